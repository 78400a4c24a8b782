;; Python: tree-sitter tags query (tools/tags.py reads it). @name/@def.* capture definitions, @ref* references.
(class_definition name: (identifier) @name) @def.class
(function_definition name: (identifier) @name) @def.function
(call function: [(identifier) @ref (attribute attribute: (identifier) @ref.attr)])
(call function: (attribute object: (identifier) @ref.object attribute: (identifier) @ref.member))
(argument_list (identifier) @ref)
(import_from_statement name: [(dotted_name (identifier) @ref.import .)
                                (aliased_import name: (dotted_name (identifier) @ref.import .))])
(assignment left: (identifier) @export.all right: [(list) (tuple)] @export.list)
(class_definition superclasses: (argument_list [(identifier) @ref (attribute attribute: (identifier) @ref)]))
;; `from M import N` and `from M import *` with their module, so the map can tell whose N a file means
(import_from_statement module_name: [(dotted_name) (relative_import)] @from.module
                       name: [(dotted_name) @from.name (aliased_import name: (dotted_name) @from.name)])
(import_from_statement module_name: [(dotted_name) (relative_import)] @from.module (wildcard_import) @from.star)
;; `@app.before_request`, `@login_required`: a decorator without a call is still a use
(decorator [(identifier) @ref (attribute attribute: (identifier) @ref.attr)])
