;; Ruby: tree-sitter tags query (tools/tags.py reads it). @name/@def.* capture definitions, @ref* references.
(class name: (constant) @name) @def.class
(module name: (constant) @name) @def.module
(method name: (identifier) @name) @def.method
(call method: (identifier) @ref)
(call method: (identifier) @autoload arguments: (argument_list . (simple_symbol) @ref.import))
(constant) @ref
