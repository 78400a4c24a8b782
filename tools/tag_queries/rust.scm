;; Rust: tree-sitter tags query (tools/tags.py reads it). @name/@def.* capture definitions, @ref* references.
(struct_item name: (type_identifier) @name) @def.struct
(enum_item name: (type_identifier) @name) @def.enum
(trait_item name: (type_identifier) @name) @def.trait
(function_item name: (identifier) @name) @def.function
(macro_definition name: (identifier) @name) @def.macro
(macro_invocation macro: (identifier) @ref)
(use_declaration argument: [(scoped_identifier name: (identifier) @ref.import) (identifier) @ref.import])
(use_list [(identifier) @ref.import (scoped_identifier name: (identifier) @ref.import)])
(call_expression function: [(identifier) @ref (field_expression field: (field_identifier) @ref)
                              (scoped_identifier name: (identifier) @ref)])
(type_identifier) @ref
