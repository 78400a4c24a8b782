;; C: tree-sitter tags query (tools/tags.py reads it). @name/@def.* capture definitions, @ref* references.
(function_definition declarator: (function_declarator declarator: (identifier) @name)) @def.function
(function_definition declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier) @name))) @def.function
(struct_specifier name: (type_identifier) @name body: (_)) @def.struct
(type_definition declarator: (type_identifier) @name) @def.type
(call_expression function: (identifier) @ref)
(type_identifier) @ref
