"""How the repo map shows a definition, pinned on small snippets of real code in each language it claims:
the declaration line (decorators and annotations folded in), members under their enclosing type, no
duplicates, the `type` keyword kept, long signatures trimmed to name, parameters and return type."""

from __future__ import annotations

import textwrap

from gptoss_agent.tools.repomap_render import render
from gptoss_agent.tools.tags import extract, trim_signature


def map_of(path: str, source: str) -> str:
    """Every definition of one file, rendered as the map renders it."""
    tags = extract(path, textwrap.dedent(source).lstrip("\n").encode())
    return render([(path, d, 1.0) for d in tags.definitions])


def test_java_shows_the_method_with_its_annotation_not_the_annotation_alone():
    text = map_of("Gson.java", """
        public final class Gson {
          @Override
          public String toString() {
            return "{serializeNulls:" + serializeNulls + "}";
          }

          public <T> T fromJson(String json, Class<T> classOfT) throws JsonSyntaxException {
            return null;
          }
        }
        """)
    assert text.splitlines() == [
        "Gson.java:",
        "  1: public final class Gson",
        "    2: @Override public String toString()",
        "    7: public <T> T fromJson(String json, Class<T> classOfT) throws JsonSyntaxException",
    ]


def test_rust_methods_sit_under_their_impl_block_not_the_struct_before_them():
    text = map_of("de.rs", """
        pub struct Deserializer<R> {
            read: R,
        }

        pub struct StreamDeserializer<'de, R, T> {
            de: Deserializer<R>,
        }

        impl<'de, R: Read<'de>> Deserializer<R> {
            pub fn new(read: R) -> Self {
                Deserializer { read }
            }

            pub fn end(&mut self) -> Result<()> {
                Ok(())
            }
        }

        pub fn from_str<'a, T>(s: &'a str) -> Result<T>
        where
            T: de::Deserialize<'a>,
        {
            from_trait(read::StrRead::new(s))
        }
        """)
    assert text.splitlines() == [
        "de.rs:",
        "  1: pub struct Deserializer<R>",
        "  5: pub struct StreamDeserializer<'de, R, T>",
        "  9: impl<'de, R: Read<'de>> Deserializer<R>",
        "    10: pub fn new(read: R) -> Self",
        "    14: pub fn end(&mut self) -> Result<()>",
        "  19: pub fn from_str<'a, T>(s: &'a str) -> Result<T> where T: de::Deserialize<'a>,",
    ]


def test_c_typedef_struct_is_one_entry_and_functions_show_their_macro_return_type():
    text = map_of("cJSON.c", """
        typedef struct cJSON
        {
            struct cJSON *next;
            int type;
        } cJSON;

        CJSON_PUBLIC(cJSON *) cJSON_Parse(const char *value)
        {
            return cJSON_ParseWithOpts(value, 0, 0);
        }

        static cJSON_bool print_value(const cJSON * const item, printbuffer * const output_buffer)
        {
            return false;
        }
        """)
    assert text.splitlines() == [
        "cJSON.c:",
        "  1: struct cJSON",
        "  7: CJSON_PUBLIC(cJSON *) cJSON_Parse(const char *value)",
        "  12: static cJSON_bool print_value(const cJSON * const item, printbuffer * const output_buffer)",
    ]


def test_go_keeps_the_type_keyword_and_the_receiver_and_puts_methods_under_their_type():
    text = map_of("mux.go", """
        package mux

        type Router struct {
        	NotFoundHandler http.Handler
        }

        type MiddlewareFunc func(http.Handler) http.Handler

        func (r *Router) HandleFunc(path string, f func(http.ResponseWriter,
        	*http.Request)) *Route {
        	return r.NewRoute().Path(path).HandlerFunc(f)
        }

        func Vars(r *http.Request) map[string]string {
        	return nil
        }
        """)
    assert text.splitlines() == [
        "mux.go:",
        "  3: type Router struct",
        "  7: type MiddlewareFunc func(http.Handler) http.Handler",
        "    9: func (r *Router) HandleFunc(path string, f func(http.ResponseWriter, *http.Request)) *Route",
        "  14: func Vars(r *http.Request) map[string]string",
    ]
    # declared apart from its type, a method still sits under it (cobra's `func (c *Command) Execute()`)
    tags = extract("command.go", b"package cobra\n\ntype Command struct {\n\tUse string\n}\n\n"
                                 b"func (c *Command) Execute() error {\n\treturn nil\n}\n")
    execute = next(d for d in tags.definitions if d.name == "Execute")
    assert render([("command.go", execute, 1.0)]).splitlines() == [
        "command.go:", "  3: type Command struct", "    7: func (c *Command) Execute() error"]


def test_python_folds_decorators_and_multi_line_parameters_and_drops_the_comment_after_the_colon():
    text = map_of("query.py", """
        class QuerySet:  # the lazy database lookup
            @property
            def ordered(self):
                return True

            def get_or_create(self, defaults=None,
                              **kwargs):
                pass

            @ordered.setter
            def ordered(self, value):
                pass
        """)
    assert text.splitlines() == [
        "query.py:",
        "  1: class QuerySet:",
        "    3: @property def ordered(self):",
        "    6: def get_or_create(self, defaults=None, **kwargs):",
    ]


def test_javascript_shows_methods_hung_on_objects_and_exported_arrows():
    text = map_of("application.js", """
        app.use = function use(fn) {
          var offset = 0;
        };

        export const listen = (port, callback) => {
          return server.listen(port, callback);
        };
        """)
    assert text.splitlines() == [
        "application.js:",
        "  1: app.use = function use(fn)",
        "  5: export const listen = (port, callback) =>",
    ]


def test_typescript_overloads_show_once_and_class_members_sit_under_the_class():
    text = map_of("map.ts", """
        export function map<T, R>(project: (value: T, index: number) => R): OperatorFunction<T, R>;
        export function map<T, R>(project: (value: T, index: number) => R, thisArg?: any): OperatorFunction<T, R> {
          return operate((source, subscriber) => {});
        }

        export class Observable<T> implements Subscribable<T> {
          pipe(): Observable<T>;
          pipe(...operations: OperatorFunction<any, any>[]): Observable<any> {
            return pipeFromArray(operations)(this);
          }
        }
        """)
    assert text.splitlines() == [
        "map.ts:",
        "  1: export function map<T, R>(project: (value: T, index: number) => R): OperatorFunction<T, R>",
        "  6: export class Observable<T> implements Subscribable<T>",
        "    7: pipe(): Observable<T>",
    ]


def test_ruby_methods_sit_under_their_class_with_their_parameters():
    text = map_of("builder.rb", """
        module Rack
          class Builder
            def initialize(default_app = nil, &block)
              @use = []
            end

            def use(middleware, *args, &block)
              @use << proc { |app| middleware.new(app, *args, &block) }
            end
          end
        end
        """)
    assert text.splitlines() == [
        "builder.rb:",
        "  1: module Rack",
        "  2: class Builder",  # a class in a namespace module stands on its own line …
        "    3: def initialize(default_app = nil, &block)",
        "    7: def use(middleware, *args, &block)",
    ]


def test_a_ruby_class_chosen_without_its_namespace_module_costs_no_module_header():
    path = "lib/rack/builder.rb"
    tags = extract(path, b"module Rack\n  class Builder\n    def use(middleware)\n    end\n  end\n"
                         b"  def release\n  end\nend\n")
    chosen = [(path, d, 1.0) for d in tags.definitions if d.name != "Rack"]
    assert render(chosen[:2]).splitlines() == [
        "lib/rack/builder.rb:",
        "  2: class Builder",  # … and `module Rack` is not repeated above it in every file of the gem
        "    3: def use(middleware)",
    ]
    assert render(chosen).splitlines()[1:] == [
        "  1: module Rack",  # a method of the module itself still sits under it
        "  2: class Builder",
        "    3: def use(middleware)",
        "    6: def release",
    ]


def test_cpp_methods_sit_under_their_class_when_the_class_line_is_not_chosen():
    source = textwrap.dedent("""
        class serializer
        {
          public:
            void dump(const BasicJsonType& val, const bool pretty_print, const unsigned int indent_step)
            {
            }
        };
        """).lstrip("\n").encode()
    tags = extract("serializer.hpp", source)
    method = next(d for d in tags.definitions if d.name == "dump")
    assert render([("serializer.hpp", method, 1.0)]).splitlines() == [
        "serializer.hpp:",
        "  1: class serializer",
        "    4: void dump(const BasicJsonType& val, const bool pretty_print, const unsigned int indent_step)",
    ]


def test_a_long_signature_keeps_its_name_parameters_start_and_return_type():
    long = ("def request(self, method, url, params=None, data=None, headers=None, cookies=None, files=None, "
            "auth=None, timeout=None, allow_redirects=True, proxies=None, hooks=None, stream=None, verify=None, "
            "cert=None, json=None) -> Response:")
    short = trim_signature(long)
    assert len(short) <= 160
    assert short.startswith("def request(self, method, url, params=")
    assert short.endswith(") -> Response:")
    assert trim_signature("def f(a, b):") == "def f(a, b):"


def test_cpp_macro_lines_around_a_class_do_not_hide_its_members():
    # the shape of nlohmann/json.hpp: a namespace macro, a template-head macro, attribute macros, an access
    # macro and a `#if` around one specifier; without care the grammar loses the class and every member
    text = map_of("json.hpp", """
        NLOHMANN_JSON_NAMESPACE_BEGIN
        NLOHMANN_BASIC_JSON_TPL_DECLARATION
        class basic_json // NOLINT(special-member-functions)
        {
          JSON_PRIVATE_UNLESS_TESTED:
            int m_type = 0;
          public:
            JSON_HEDLEY_WARN_UNUSED_RESULT
            static basic_json diff(const basic_json& source, const basic_json& target)
            {
                return source;
            }
        #if defined(JSON_HAS_CPP_14)
            constexpr
        #endif
            bool contains(const char* key) const
            {
                return false;
            }
        };
        NLOHMANN_JSON_NAMESPACE_END
        """)
    assert text.splitlines() == [
        "json.hpp:",
        "  3: class basic_json // NOLINT(special-member-functions)",
        "    9: static basic_json diff(const basic_json& source, const basic_json& target)",
        "    14: constexpr bool contains(const char* key) const",  # the conditional specifier folded in
    ]


def test_a_shown_signature_is_cut_after_a_whole_parameter_never_inside_one():
    long = "void dump(const BasicJsonType& val, const bool pretty_print, const unsigned int indent_step)"
    assert trim_signature(long, 80) == "void dump(const BasicJsonType& val, const bool pretty_print, …)"
    nested = "fn walk<F>(&self, visit: Fn(Map<String, Value>, usize) -> bool, depth: usize, limit: usize) -> Walk"
    assert trim_signature(nested, 80) == "fn walk<F>(&self, visit: Fn(Map<String, Value>, usize) -> bool, …) -> Walk"


def test_members_named_only_sit_on_one_line_after_the_members_shown_in_full():
    # the shape of requests' Session: one method shown with its signature, the others by name under the class
    path = "sessions.py"
    tags = extract(path, textwrap.dedent("""
        class Session:
            def request(self, method, url):
                pass

            def get(self, url, **kwargs):
                pass

            def mount(self, prefix, adapter):
                pass


        def session():
            return Session()
        """).lstrip("\n").encode())
    by_name = {d.name: d for d in tags.definitions}
    full = [(path, by_name[n], 1.0) for n in ("Session", "request", "session")]
    assert render(full, [(path, by_name["mount"]), (path, by_name["get"])]).splitlines() == [
        "sessions.py:",
        "  1: class Session:",
        "    2: def request(self, method, url):",
        "    other members: mount, get",  # rank order, after the last member shown in full
        "  12: def session():",
    ]
    # a type whose own line is not chosen is still named once as the header of its members
    assert render([], [(path, by_name["mount"])]).splitlines() == [
        "sessions.py:", "  1: class Session:", "    other members: mount"]
