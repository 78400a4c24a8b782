"""The repo map reads a Python import as saying whose name a file uses: small projects shaped like Django's
and requests' layouts, where a bare name would credit the wrong definition or none at all."""

from __future__ import annotations

import re

from gptoss_agent.tools.repomap import RepoIndex, ranked_definitions, repo_map
from gptoss_agent.tools.repomap_imports import OUTSIDE, Origin, PythonImports
from gptoss_agent.tools.repomap_rank import declared_exports
from gptoss_agent.tools.tags import extract


def index_of(files: dict[str, str]) -> RepoIndex:
    index = RepoIndex()
    for path, text in files.items():
        index.files[path] = extract(path, text.encode())
    return index


def scores(files: dict[str, str], name: str) -> dict[str, float]:
    return {path: score for path, d, score in ranked_definitions(index_of(files)) if d.name == name}


def test_imports_name_their_module_star_imports_and_decorators_are_uses():
    tags = extract("pkg/views.py", b"from .models import Model, Manager as M\nfrom ..core import *\n"
                                   b"from django.conf import (\n    settings,\n)\n\n\n"
                                   b"@app.before_request\n@login_required\ndef view():\n    pass\n")
    refs = set(tags.references)
    assert {"@.models:Model", "@.models:Manager", "@..core:*", "@django.conf:settings"} <= refs
    assert {"before_request", "login_required"} <= refs  # a decorator without a call still uses the name


def test_a_module_is_found_by_its_dotted_name_in_any_layout_and_relative_imports_climb_packages():
    index = index_of({
        "src/requests/__init__.py": "from .api import get\n",
        "src/requests/api.py": "def get(url):\n    pass\n",
        "src/requests/adapters/__init__.py": "from ..api import get\n",
        "tests/test_api.py": "from requests.api import get\nfrom datetime import datetime\n",
    })
    imports = PythonImports(index)
    assert imports.module_file("tests/test_api.py", "requests.api") == "src/requests/api.py"
    assert imports.module_file("tests/test_api.py", "requests") == "src/requests/__init__.py"
    assert imports.module_file("src/requests/adapters/__init__.py", "..api") == "src/requests/api.py"
    assert imports.module_file("src/requests/__init__.py", ".api") == "src/requests/api.py"
    assert imports.module_file("tests/test_api.py", "datetime") == OUTSIDE
    assert imports.origin("tests/test_api.py", "requests", "get") == Origin("src/requests/api.py", True)
    # a package and a module of the same name: Python imports the package
    both = PythonImports(index_of({"pkg/sub.py": "", "pkg/sub/__init__.py": "", "pkg/__init__.py": ""}))
    assert both.module_file("pkg/__init__.py", ".sub") == "pkg/sub/__init__.py"
    assert both.module_file("app.py", "pkg.sub") == "pkg/sub/__init__.py"


def test_a_name_imported_from_where_it_is_assigned_credits_no_same_named_method():
    # Django: `from django.conf import settings` in hundreds of files names a LazySettings() object, not the
    # `settings` property of a connection handler; the property once ranked among Django's first definitions
    users = {f"app/view{n}.py": "from app.conf import settings\n\n\ndef view():\n    return helper(settings)\n"
             for n in range(6)}
    files = {
        "app/conf.py": "class LazySettings:\n    pass\n\n\nsettings = LazySettings()\n",
        "app/db.py": "class Handler:\n    def settings(self):\n        pass\n\n    def connect_all(self):\n"
                     "        pass\n",
        "app/helpers.py": "def helper(x):\n    return x\n",
        **users,
    }
    ranked = [d.name for _, d, _ in ranked_definitions(index_of(files))]
    assert ranked.index("settings") > ranked.index("helper")
    without_modules = {path: text.replace("from app.conf import settings", "import settings")
                       for path, text in files.items()}
    assert scores(files, "settings")["app/db.py"] < scores(without_modules, "settings")["app/db.py"] / 3


def test_a_name_imported_from_outside_the_project_credits_nothing_of_the_projects():
    # `from datetime import datetime` says nothing about the project's own `datetime` shim
    files = {"app/datetime_safe.py": "class datetime:\n    pass\n",
             **{f"app/m{n}.py": "from datetime import datetime\n\n\ndef f():\n    return datetime(1, 2, 3)\n"
                for n in range(5)}}
    local = {path: text.replace("from datetime import", "from app.datetime_safe import")
             for path, text in files.items()}
    assert scores(files, "datetime")["app/datetime_safe.py"] < scores(local, "datetime")["app/datetime_safe.py"] / 3


def test_an_import_credits_the_very_definition_it_names_not_every_same_named_one():
    # Django defines `render` 67 times; `from django.shortcuts import render` means one of them, even in a
    # file that also calls a template's `render` method
    nodes = {f"app/template/node{n}.py": f"class Node{n}:\n    def render(self, context):\n        pass\n"
             for n in range(8)}
    views = {f"tests/test_view{n}.py": "from app.shortcuts import render\n\n\ndef view(request, template):\n"
                                       "    template.render({})\n    return render(request, 'a.html')\n"
             for n in range(6)}
    files = {"app/shortcuts.py": "def render(request, template_name, context=None):\n    pass\n", **nodes, **views}
    found = scores(files, "render")
    assert found["app/shortcuts.py"] > 3 * max(s for p, s in found.items() if p != "app/shortcuts.py")


def test_re_exports_and_star_imports_are_followed_to_the_definition():
    index = index_of({
        "app/forms/__init__.py": "from app.forms.forms import *\nfrom app.forms.models import *\n",
        "app/forms/forms.py": "__all__ = ('BaseForm', 'Form')\n\n\nclass BaseForm:\n    pass\n\n\n"
                              "class Form(BaseForm):\n    pass\n\n\nclass Hidden:\n    pass\n",
        "app/forms/models.py": "from app.forms.forms import BaseForm\n\n\nclass ModelForm(BaseForm):\n    pass\n",
        "app/models/__init__.py": "from app.models.query import QuerySet\n",
        "app/models/query.py": "class QuerySet:\n    pass\n",
        "app/views.py": "from app.forms import Form, Hidden\nfrom app.models import QuerySet\n",
    })
    imports = PythonImports(index)
    assert imports.origin("app/views.py", "app.forms", "Form") == Origin("app/forms/forms.py", True)
    assert imports.origin("app/views.py", "app.models", "QuerySet") == Origin("app/models/query.py", True)
    # `__all__` leaves `Hidden` out of the star import: not a definition `app.forms` offers
    assert imports.origin("app/views.py", "app.forms", "Hidden") == Origin("app/forms/__init__.py", False)
    assert set(imports.star_names("app/forms/__init__.py")) == {"BaseForm", "Form", "ModelForm"}


def test_the_exports_line_follows_star_imports_and_all_and_names_assignments_the_package_offers():
    # Django's forms/__init__.py star-imports every form module; urls/__init__.py offers `path`, which
    # urls/conf.py makes by assignment (`path = partial(_path, …)`) and lists in `__all__`, beside a name
    # it imports only for its own use
    index = index_of({
        "web/forms/__init__.py": "from web.forms.forms import *\n",
        "web/forms/forms.py": "__all__ = ['Form']\n\n\nclass Form:\n    pass\n",
        "web/urls/__init__.py": "from .conf import path\nfrom .base import reverse\nfrom .utils import helper\n\n"
                                "__all__ = ['path', 'reverse']\n",
        "web/urls/conf.py": "from functools import partial\n\n\ndef _path(route, view):\n    pass\n\n\n"
                            "path = partial(_path)\n",
        "web/urls/base.py": "def reverse(name):\n    pass\n",
        "web/urls/utils.py": "def helper():\n    pass\n",
        "web/contrib/forms/__init__.py": "from web.forms import *\n",  # a sub-package re-exporting the above
        **{f"tests/test_{n}.py": "from web.urls import path, reverse\nfrom web.forms import Form\n"
           for n in range(3)},
    })
    exports = dict((name, path) for path, name in declared_exports(index, ranked_definitions(index)))
    assert exports == {"Form": "web/forms/__init__.py", "path": "web/urls/__init__.py",
                       "reverse": "web/urls/__init__.py"}


def named_twice(text: str, entry_file: str, names: list[str]) -> set[str]:
    """The names both on the map's opening exports line (of `entry_file`) and in the outline after it."""
    opening = f"{entry_file}:\n  exports:"
    head = text.split("\n", 2)[1] if text.startswith(opening) else ""
    outline = text[len(entry_file) + 2 + len(head):] if head else text
    return {n for n in names if re.search(rf"\b{n}\b", head) and re.search(rf"\b{n}\b", outline)}


def test_a_type_the_exports_line_names_is_not_repeated_as_a_bare_declaration_and_no_name_is_shown_twice(codec):
    # rack's lib/rack.rb autoloads 60 middleware classes: named on the exports line they cost two tokens
    # each, shown as bare declarations a dozen (file and line), which left no room for Builder's `run`/`use`;
    # and when the outline grows into the room the exports line leaves, the names it now shows leave the line
    names = [f"Middleware{n}" for n in range(30)]
    files = {"lib/rack.rb": "module Rack\n  autoload :Builder, \"rack/builder\"\n"
                            + "".join(f"  autoload :{name}, \"rack/m{n}\"\n" for n, name in enumerate(names)) + "end\n",
             "lib/rack/builder.rb": "module Rack\n  class Builder\n" + "".join(
                 f"    def {m}(app)\n      app\n    end\n"
                 for m in ("use", "run", "map", "warmup", "to_app", "freeze_app")) + "  end\nend\n"}
    files.update({f"lib/rack/m{n}.rb": f"module Rack\n  class {name}\n    def call(env)\n      env\n    end\n"
                                       f"  end\nend\n" for n, name in enumerate(names)})
    index = index_of(files)
    for budget in (80, 120, 160, 240):
        text = repo_map(index, budget, codec.count)
        assert codec.count(text) <= budget
        twice = named_twice(text, "lib/rack.rb", names)
        assert not twice, (budget, twice)
    # every middleware is named, and the room their bare declarations would have taken names Builder's API
    assert all(re.search(rf"\b{n}\b", text) for n in names)
    assert re.search(r"\buse\b", text) and re.search(r"\brun\b", text)


def test_a_name_is_never_both_in_the_exports_line_and_in_the_outline(codec):
    # requests: the entry file re-exports `get`, `put`, `delete`, which rank below the core classes; when the
    # outline grows into the room the short exports line leaves, the names it now shows leave the line
    verbs = ["get", "post", "put", "patch", "delete", "head", "options"]
    files = {"pkg/__init__.py": f"from .api import {', '.join(verbs)}\n",
             "pkg/api.py": "".join(f"def {verb}(url, params=None, **kwargs):\n    pass\n\n\n" for verb in verbs)}
    for n in range(12):  # core classes every module uses
        files[f"pkg/core{n}.py"] = f"class Core{n}:\n    def handle{n}(self, request, timeout=None):\n        pass\n"
        files[f"pkg/user{n}.py"] = "".join(f"from .core{k} import Core{k}\n" for k in range(12)) + (
            "\n\ndef run():\n" + "".join(f"    Core{k}().handle{k}(1)\n" for k in range(12)))
    index = index_of(files)
    for budget in range(60, 400, 10):
        text = repo_map(index, budget, codec.count)
        assert codec.count(text) <= budget
        twice = named_twice(text, "pkg/__init__.py", verbs)
        assert not twice, (budget, twice)


def test_a_name_holding_a_character_the_map_escapes_is_still_named_once(codec):
    # `ful\u3164l` (a Hangul filler: a letter that looks like nothing) is written `ful<U+3164>l` in the
    # outline; compared raw, it was named on both lines
    names = ["ful\u3164l", "k\uffa0na", "plain"]
    files = {"pkg/__init__.py": f"from .core import {', '.join(names)}\n",
             "pkg/core.py": "".join(f"def {n}():\n    pass\n\n\n" for n in names)}
    index = index_of(files)
    assert {d.name for d in index.files["pkg/core.py"].definitions} == set(names)
    for budget in range(30, 200, 10):
        text = repo_map(index, budget, codec.count)
        assert "\u3164" not in text and "\uffa0" not in text
        for written in ("ful<U+3164>l", "k<U+FFA0>na", "plain"):
            assert text.count(written) <= 1, (budget, text)


def test_a_star_import_of_a_module_with_all_brings_only_what_it_lists():
    # pkg/api.py star-imports its private helpers but offers only `public_fn`: `from pkg import *` gives
    # `public_fn`, and the exports line must say no more
    index = index_of({
        "pkg/__init__.py": "from .api import *\n",
        "pkg/api.py": "from ._impl import *\n\n__all__ = ['public_fn']\n\n\ndef public_fn():\n    pass\n",
        "pkg/_impl.py": "def internal_helper():\n    pass\n\n\ndef another_internal():\n    pass\n",
        "app.py": "from pkg import internal_helper\n",
    })
    imports = PythonImports(index)
    assert imports.star_names("pkg/__init__.py") == {"public_fn": "pkg/api.py"}
    assert imports.origin("app.py", "pkg", "internal_helper") == Origin("pkg/__init__.py", False)
    assert [name for _, name in declared_exports(index, ranked_definitions(index))] == ["public_fn"]


def test_files_that_star_import_each_other_cost_a_bounded_number_of_lookups():
    # a repository decides how many files star-import how many others, and which names nobody defines: each
    # (file, name) is looked at once, and at most MAX_VISITS of them, whatever the shape
    from gptoss_agent.tools.repomap_imports import MAX_STARS, MAX_VISITS

    count = 300
    files = {f"p/m{n}.py": "".join(f"from p.m{(n * 7 + k) % count} import *\n" for k in range(MAX_STARS + 8))
             + f"from p.m{(n + 1) % count} import missing_{n}\n\n\ndef f{n}():\n    pass\n" for n in range(count)}
    index = index_of(files)
    imports = PythonImports(index)
    for path in files:
        imports.origins_in(path)
    assert imports.visits <= MAX_VISITS
    assert imports.origin("p/m0.py", "p.m5", "f5") == Origin("p/m5.py", True)  # what it defines, it still finds


def test_a_type_whose_name_is_only_a_folder_on_the_exports_line_stays_in_the_outline(codec):
    # React-style `src/Button/index.ts` re-exports `ButtonProps` and utilities: the word `Button` in the entry
    # file's path is not the class `Button`, which 30 files use and must still be shown
    files = {"src/Button/index.ts": "export { ButtonProps, ButtonSize } from './types';\n"
                                    + "".join(f"export {{ util{i} }} from '../util{i}';\n" for i in range(40)),
             "src/Button/types.ts": "export interface ButtonProps { label: string }\nexport type ButtonSize = 'sm';\n",
             "src/Button/Button.ts": "import { ButtonProps } from './types';\nexport class Button {}\n"}
    for i in range(40):
        files[f"src/util{i}.ts"] = f"export function util{i}(a: number): number {{ return a; }}\n" + "".join(
            f"export function helper{i}_{j}(x: string): string {{ return x; }}\n" for j in range(10))
    for i in range(30):
        files[f"src/app{i}.ts"] = (f"import {{ Button }} from './Button/Button';\nimport {{ helper{i}_1 }} from "
                                   f"'./util{i}';\nexport const a{i} = new Button();\n")
    text = repo_map(index_of(files), 250, codec.count)
    assert "exports:" in text and re.search(r"class Button\b", text), text
