;; Javascript: tree-sitter tags query (tools/tags.py reads it). @name/@def.* capture definitions, @ref* references.
(class_declaration name: (identifier) @name) @def.class
(class_heritage (identifier) @ref)
