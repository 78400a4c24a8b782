;; Go: tree-sitter tags query (tools/tags.py reads it). @name/@def.* capture definitions, @ref* references.
(function_declaration name: (identifier) @name) @def.function
(method_declaration name: (field_identifier) @name) @def.method
(type_spec name: (type_identifier) @name) @def.type
(call_expression function: [(identifier) @ref (selector_expression field: (field_identifier) @ref.attr)])
(type_identifier) @ref
