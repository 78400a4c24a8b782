;; Java: tree-sitter tags query (tools/tags.py reads it). @name/@def.* capture definitions, @ref* references.
(class_declaration name: (identifier) @name) @def.class
(interface_declaration name: (identifier) @name) @def.interface
(method_declaration name: (identifier) @name) @def.method
(enum_declaration name: (identifier) @name) @def.enum
(method_invocation name: (identifier) @ref)
(method_invocation object: (identifier) @ref)
(method_invocation object: (identifier) @ref.object name: (identifier) @ref.member)
(type_identifier) @ref
