"""Build hook: compile the translation catalogs into the wheel (metadata lives in pyproject.toml).

The compiled ``.mo`` and JSON catalogs are not committed (they are built from the ``.po`` files); a wheel
or sdist install gets them from here, a checkout from ``scripts/bootstrap`` or the site's start-up.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCatalogs(build_py):
    """``build_py``, then ``web/catalogs.py`` compiles the catalogs into the build tree."""

    def run(self) -> None:
        super().run()
        source = Path(__file__).parent / "web" / "catalogs.py"
        spec = importlib.util.spec_from_file_location("notifier_catalogs_build", source)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up while the file runs
        spec.loader.exec_module(module)
        built = Path(self.build_lib) / "web"
        module.compile_all(
            root=Path(module.TRANSLATIONS),
            json_dir=built / "static" / "i18n",
            out_root=built / "translations",
        )


setup(cmdclass={"build_py": BuildWithCatalogs})
