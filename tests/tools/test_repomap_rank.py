"""What the repo map puts first on small projects shaped like real ones: the library's exported API over
tests, internals and names that shadow builtins."""

from __future__ import annotations

from gptoss_agent.tools.repomap import RepoIndex, ranked_definitions
from gptoss_agent.tools.repomap_rank import file_role, split_entries, with_member_names
from gptoss_agent.tools.tags import extract


def index_of(files: dict[str, str]) -> RepoIndex:
    index = RepoIndex()
    for path, text in files.items():
        index.files[path] = extract(path, text.encode())
    return index


def order(files: dict[str, str]) -> list[str]:
    return [d.name for _, d, _ in ranked_definitions(index_of(files))]


def test_tests_examples_and_benchmarks_are_supporting_files_by_each_languages_convention():
    for path in ("tests/test_models.py", "django/test/client.py", "mux_test.go", "src/test/java/AppTest.java",
                 "spec/rack_spec.rb", "examples/auth/index.js", "benches/bench.rs", "src/map.spec.ts",
                 "fuzzing/fuzz_main.c", "single_include/nlohmann/json.hpp"):
        assert file_role(path) < 1.0, path
    for path in ("django/db/models/base.py", "mux.go", "src/main/java/org/jsoup/Jsoup.java", "lib/rack/builder.rb",
                 "src/de.rs", "cJSON.c", "lib/testing_helpers_are_not_a_folder.py"):
        assert file_role(path) == 1.0, path


def test_the_library_class_outranks_the_helpers_tests_define():
    library = "class Model:\n    def save(self):\n        pass\n"
    tests = {f"tests/test_{n}.py": f"from app.models import Model\n\n\nclass Helper{n}:\n    pass\n\n\n"
                                    f"def test_{n}():\n    Model().save()\n    Helper{n}()\n    Helper{n}()\n"
             for n in range(6)}
    names = order({"app/models.py": library, **tests})
    assert names[0] == "Model"
    assert names.index("save") < min(names.index(f"Helper{n}") for n in range(6))


def test_a_method_shadowing_a_builtin_ranks_below_the_projects_own_api():
    files = {
        "app/base.py": "class Query:\n    def type(self):\n        pass\n\n    def filter_rows(self):\n        pass\n",
        "app/a.py": "def a(x):\n    return type(x), str(x), Query().filter_rows()\n",
        "app/b.py": "def b(x):\n    return type(x), Query().filter_rows()\n",
        "app/c.py": "def c(x):\n    return type(x)\n",
    }
    names = order(files)
    assert names.index("filter_rows") < names.index("type")


def test_python_all_and_go_capitals_decide_what_is_exported():
    py = extract("pkg/api.py", b"__all__ = ['get']\n\n\ndef get(url):\n    pass\n\n\ndef helper():\n    pass\n")
    assert {d.name: d.exported for d in py.definitions} == {"get": True, "helper": False}
    go = extract("mux.go", b"package mux\nfunc Vars() {}\nfunc cleanPath() {}\n")
    assert {d.name: d.exported for d in go.definitions} == {"Vars": True, "cleanPath": False}
    rs = extract("lib.rs", b"pub fn from_str() {}\nfn parse_inner() {}\npub(crate) fn crate_only() {}\n")
    assert {d.name: d.exported for d in rs.definitions} == {"from_str": True, "parse_inner": False,
                                                            "crate_only": False}
    java = extract("Jsoup.java", b'@SuppressWarnings("unused") public class Jsoup {\n'
                                 b'  public static Document parse(String html) { return null; }\n'
                                 b'  private static void check() {}\n}\n')
    assert {d.name: d.exported for d in java.definitions} == {"Jsoup": True, "parse": True, "check": False}
    ts = extract("map.ts", b"export function map() {}\nfunction local() {}\n")
    assert {d.name: d.exported for d in ts.definitions} == {"map": True, "local": False}
    c = extract("cJSON.c", b"int cJSON_Parse(void) { return 0; }\nstatic int skip(void) { return 0; }\n")
    assert {d.name: d.exported for d in c.definitions} == {"cJSON_Parse": True, "skip": False}


def test_an_exported_function_outranks_an_internal_one_used_as_much():
    files = {
        "mux.go": "package mux\nfunc Vars() {}\nfunc cleanPath() {}\n",
        "a.go": "package mux\nfunc a() { Vars(); cleanPath() }\n",
        "b.go": "package mux\nfunc b() { Vars(); cleanPath() }\n",
    }
    names = order(files)
    assert names.index("Vars") < names.index("cleanPath")


def test_a_call_naming_the_type_credits_that_types_member_over_same_named_ones():
    files = {
        "Jsoup.java": "public class Jsoup { public static Document parse(String html) { return null; } }\n",
        "Parser.java": "public class Parser { public Document parse(String html) { return null; } }\n",
        "Other.java": "public class Other { public Document parse(String html) { return null; } }\n",
        "A.java": "class A { void a() { Jsoup.parse(\"x\"); } }\n",
        "B.java": "class B { void b() { Jsoup.parse(\"y\"); } }\n",
    }
    ranked = [(p, d.name) for p, d, _ in ranked_definitions(index_of(files)) if d.name == "parse"]
    assert ranked[0] == ("Jsoup.java", "parse")


def test_cpp_calls_through_a_type_or_namespace_name_the_member_they_call():
    tags = extract("test_parse.cpp", b"void t() { auto j = json::parse(text); json::to_cbor<int>(j); }\n")
    assert {"parse", "to_cbor"} <= set(tags.references)


def test_a_ruby_gems_autoloads_name_its_public_classes():
    files = {
        "lib/rack.rb": "module Rack\n  autoload :Static, 'rack/static'\nend\n",
        "lib/rack/static.rb": "module Rack\n  class Static\n    def call(env)\n    end\n  end\nend\n",
        "lib/rack/chunk.rb": "module Rack\n  class Chunk\n    def size\n    end\n  end\nend\n",
    }
    names = order(files)
    assert names.index("Static") < names.index("Chunk")


def test_a_public_types_uncalled_methods_outrank_a_side_modules_uncalled_functions():
    # requests' Response.raise_for_status is its API though the library never calls it
    files = {
        "pkg/models.py": "class Response:\n    def raise_for_status(self):\n        pass\n",
        "pkg/rows.py": "def load(path):\n    pass\n\n\ndef format_row(row):\n    pass\n",
        **{f"pkg/use{n}.py": "from pkg.models import Response\n\n\ndef f():\n    return Response()\n"
           for n in range(4)},
        **{f"pkg/read{n}.py": "from pkg.rows import load\n\n\ndef g():\n    return load('x')\n"
           for n in range(6)},  # the side module is used more than the models
    }
    names = order(files)
    assert names.index("raise_for_status") < names.index("format_row")
    assert names.index("Response") < names.index("raise_for_status")  # a lone member never outranks its type


def test_a_trait_impls_methods_gain_nothing_from_the_type():
    source = ("pub struct Value;\nimpl Value {\n    pub fn as_str(&self) {}\n}\n"
              "impl Serialize for Value {\n    fn serialize(&self) {}\n}\n")
    files = {"src/value.rs": source, **{f"src/u{n}.rs": "fn f(v: Value) {}\n" for n in range(3)}}
    scores = {d.name: s for _, d, s in ranked_definitions(index_of(files))}
    assert scores["as_str"] > scores["serialize"]


def test_the_same_name_defined_again_and_again_gives_way_to_other_names():
    fields = "".join(f"class F{n}:\n    @property\n    def value(self):\n        pass\n\n" for n in range(6))
    files = {"pkg/fields.py": fields + "def clean(data):\n    pass\n",
             **{f"pkg/use{n}.py": "def g(x):\n    return x.value() + clean(x)\n" for n in range(3)}}
    names = order(files)
    assert names.index("clean") < [i for i, name in enumerate(names) if name == "value"][1]


def test_uses_from_tests_count_and_an_amalgamated_copy_counts_for_nothing():
    files = {
        "src/api.c": "int api_parse(void) { return 0; }\nint api_unused(void) { return 0; }\n",
        "single_include/all.c": "int api_parse(void) { return 0; }\nint api_unused(void) { return api_unused(); }\n",
        "tests/test_api.c": "void t(void) { api_parse(); }\n",
    }
    ranked = [(p, d.name) for p, d, _ in ranked_definitions(index_of(files))]
    assert ranked.index(("src/api.c", "api_parse")) < ranked.index(("src/api.c", "api_unused"))
    scores = {(p, d.name): s for p, d, s in ranked_definitions(index_of(files))}
    assert scores[("src/api.c", "api_unused")] < scores[("src/api.c", "api_parse")] / 5


def test_detail_and_impl_folders_are_internal_like_internal():
    files = {
        "include/lib/detail/traits.hpp": "struct is_thing { };\n",
        "include/lib/value.hpp": "struct value { };\n",
        "src/a.cpp": "void a(value v, is_thing t);\n", "src/b.cpp": "void b(value v, is_thing t);\n",
    }
    names = order(files)
    assert names.index("value") < names.index("is_thing")


def test_a_types_members_are_offered_by_name_never_before_the_type_and_not_another_types_api():
    # nlohmann's basic_json: the class is the API, its many members (at, contains, patch) too many to show
    # in full; a trait impl's methods are the trait's API, not the type's
    source = ("pub struct Value;\nimpl Value {\n    pub fn new() -> Value { Value }\n    pub fn as_str(&self) {}\n}\n"
              "impl Serialize for Value {\n    fn serialize(&self) {}\n}\n")
    files = {"src/value.rs": source, **{f"src/u{n}.rs": "fn f(v: Value) { v.as_str() }\n" for n in range(3)}}
    entries = with_member_names(ranked_definitions(index_of(files)))
    named = [d.name for _, d, _, name_only in entries if name_only]
    assert named == ["as_str", "new"]  # the one the project uses first
    position = {(d.name, name_only): i for i, (_, d, _, name_only) in enumerate(entries)}
    assert position[("Value", False)] < position[("as_str", True)] < position[("as_str", False)]
    full, by_name = split_entries(entries[:position[("as_str", True)] + 1])
    assert [d.name for _, d in by_name] == ["as_str"] and "as_str" not in [d.name for _, d, _ in full]


def test_an_override_is_not_offered_by_name_under_the_subclass():
    # Django's ForeignKey(ForeignObject) redefines get_attname: the API is documented at the base class
    files = {
        "fields/related.py": "class ForeignObject:\n    def get_attname(self):\n        pass\n\n\n"
                             "class ForeignKey(ForeignObject):\n    def get_attname(self):\n        pass\n\n"
                             "    def target_field(self):\n        pass\n",
        **{f"app/m{n}.py": "from fields.related import ForeignKey\n\n\nx = ForeignKey()\n" for n in range(3)},
    }
    named = [(d.scope.split("(")[0].rstrip(":"), d.name) for _, d, _, name_only
             in with_member_names(ranked_definitions(index_of(files))) if name_only]
    assert ("class ForeignKey", "target_field") in named
    assert ("class ForeignObject", "get_attname") in named
    assert ("class ForeignKey", "get_attname") not in named


def test_a_bare_call_credits_the_function_not_the_methods_of_the_same_name():
    # Django: views call `render(request, …)` (django/shortcuts.py); dozens of template nodes define a
    # `render(self, context)` method that no bare call can reach
    files = {
        "pkg/shortcuts.py": "def render(request, template_name):\n    pass\n",
        **{f"pkg/nodes{n}.py": f"class Node{n}:\n    def render(self, context):\n        pass\n" for n in range(6)},
        **{f"pkg/views{n}.py": "from pkg.shortcuts import render\n\n\ndef view(request):\n"
                               "    return render(request, 'x.html')\n" for n in range(3)},
    }
    ranked = [(p, d.name) for p, d, _ in ranked_definitions(index_of(files)) if d.name == "render"]
    assert ranked[0] == ("pkg/shortcuts.py", "render")
    scores = {p: s for p, d, s in ranked_definitions(index_of(files)) if d.name == "render"}
    assert scores["pkg/shortcuts.py"] > 2 * max(s for p, s in scores.items() if p != "pkg/shortcuts.py")


def test_what_the_entry_file_re_exports_outranks_a_helper_only_the_library_calls():
    # rxjs: `of` is public because src/index.ts re-exports it, though no file in the package calls it
    files = {
        "src/index.ts": "export { of } from './internal/observable/of';\n"
                        "export { Observable } from './internal/Observable';\n",
        "src/internal/observable/of.ts": "import { Observable } from '../Observable';\n"
                                         "export function of(...values) {\n  return new Observable();\n}\n",
        "src/internal/Observable.ts": "import { isFunction } from '../util/isFunction';\nexport class Observable {\n"
                                      "  pipe(f) { return isFunction(f) ? f(this) : this; }\n}\n",
        "src/util/isFunction.ts": "export function isFunction(value) {\n  return typeof value === 'function';\n}\n",
        "src/operators/map.ts": "import { isFunction } from '../util/isFunction';\n"
                                "export function mapIt(f) { return isFunction(f); }\n",
    }
    names = order(files)
    assert names.index("of") < names.index("isFunction")


def test_declared_exports_are_the_entry_files_named_re_exports_of_the_projects_own_names():
    from gptoss_agent.tools.repomap_rank import declared_exports

    index = index_of({
        "src/index.ts": "export { of, map } from './internal/of';\nexport * from './internal/star';\n"
                        "export { fmt } from 'another-package';\n",
        "src/internal/of.ts": "export function of(value) { return value; }\nexport function map(f) { return f; }\n",
        "src/internal/star.ts": "export function starred() { return 1; }\n",
        "src/internal/user.ts": "import { map } from './of';\nexport function user() { return map(1); }\n",
        "src/helpers.ts": "export { of } from './internal/of';\n",  # not an entry file
    })
    exports = declared_exports(index, ranked_definitions(index))
    assert exports == [("src/index.ts", "map"), ("src/index.ts", "of")]  # `map` is used: it ranks first


def test_ruby_private_and_protected_methods_and_nodoc_types_are_not_exported():
    # rack's classes hide helpers after `private`, and mark internals `# :nodoc:` (RDoc leaves them out of
    # the documented API, a type's members with it)
    ruby = extract("lib/rack/builder.rb", b"""module Rack
  class Builder
    def use(middleware); end
    def run(app); end
    private
    def generate_map(default_app); end
    public
    def to_app; end
    private def freeze_internal; end
    def warmup; end
    private :warmup
    protected
    def compare(other); end
  end
  class HeaderHash < Hash # :nodoc:
    def merge(other); end
  end
  def self.helper; end
  module Multibyte # :nodoc:
    def internal; end
    class Chars
      def upcase; end
    end
  end
  class Shown
    def kept(x = ":nodoc:"); end
    protected
    def made_public_again; end
    public :made_public_again
    private "by_string"
    def by_string; end
    def by_array; end
    def by_symbol_array; end
    private [:by_array]
    private %i[by_symbol_array]
  end
end
""")
    assert {d.name: d.exported for d in ruby.definitions} == {
        "Rack": True, "Builder": True, "use": True, "run": True, "generate_map": False, "to_app": True,
        "freeze_internal": False, "warmup": False, "compare": False, "HeaderHash": False, "merge": False,
        # RDoc leaves out a :nodoc: module's own methods, not the classes nested in it
        "Multibyte": False, "internal": False, "Chars": True, "upcase": True,
        "Shown": True, "made_public_again": True, "kept": True, "by_string": False, "by_array": False,
        "by_symbol_array": False}


def test_rubys_protocol_methods_rank_below_the_types_own_api():
    # rack's BodyProxy answers `method_missing`, `respond_to_missing?` and `close`, as every delegating IO-like
    # object does; those calls say nothing about rack's API, `set_header` does
    files = {
        "lib/rack/body_proxy.rb": "class BodyProxy\n  def method_missing(name, *args)\n    @body.send(name)\n  end\n"
                                  "  def respond_to_missing?(name, all = false)\n    true\n  end\n"
                                  "  def close\n    @body.close\n  end\n  def set_header(key, value)\n  end\nend\n",
        **{f"lib/rack/user{n}.rb": "class User{n}\n  def go(body)\n    body.close\n    body.set_header(1, 2)\n"
                                   "    method_missing(:x)\n    respond_to_missing?(:x)\n  end\nend\n".replace("{n}", str(n))
           for n in range(4)},
    }
    names = order(files)
    assert names.index("set_header") < min(names.index(m) for m in ("method_missing", "respond_to_missing?", "close"))
