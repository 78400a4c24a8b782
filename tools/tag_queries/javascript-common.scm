;; JavaScript and TypeScript alike: prepended to javascript.scm and typescript.scm.
(function_declaration name: (identifier) @name) @def.function
(method_definition name: (property_identifier) @name) @def.method
(variable_declarator name: (identifier) @name value: [(arrow_function) (function_expression)]) @def.function
(assignment_expression left: (member_expression property: (property_identifier) @name)
                       right: [(arrow_function) (function_expression)]) @def.function
(call_expression function: [(identifier) @ref (member_expression property: (property_identifier) @ref.attr)])
(call_expression function: (member_expression object: (identifier) @ref.object property: (property_identifier) @ref.member))
(new_expression constructor: (identifier) @ref)
(import_specifier name: (identifier) @ref.import)
(export_specifier name: (identifier) @ref.import)
(assignment_expression right: (identifier) @ref)
