;; C++: tree-sitter tags query (tools/tags.py reads it). @name/@def.* capture definitions, @ref* references.
(function_definition declarator: (function_declarator declarator: [(identifier) (field_identifier) (qualified_identifier)] @name)) @def.function
(class_specifier name: (type_identifier) @name body: (_)) @def.class
(struct_specifier name: (type_identifier) @name body: (_)) @def.struct
(call_expression function: [(identifier) @ref (field_expression field: (field_identifier) @ref)])
(call_expression function: (qualified_identifier name: [(identifier) @ref (template_function name: (identifier) @ref)]))
(call_expression function: (template_function name: (identifier) @ref))
(type_identifier) @ref
