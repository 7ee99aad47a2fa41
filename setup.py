"""Build hook: the wheel carries the repository's top-level data folders as package data.

``schemas/``, ``expectations/``, the sample ``registry/`` and ``dags/`` stay at the top of the
repository, where people edit them; a built (non-editable) package gets a copy of each under
``pipelines/_shipped/<name>/``, and ``pipelines.config.resource_dir`` finds whichever is there.
An editable install copies nothing: it reads the checkout's folders. Everything else about the
package is declared in ``pyproject.toml``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED_FOLDERS = ("schemas", "expectations", "registry", "dags")  # keep in step with pipelines.config
SHIPPED_PACKAGE_DIR = ("pipelines", "_shipped")


def shipped_files(name: str) -> list[Path]:
    """The files of a top-level folder that the wheel carries, relative to it (no caches, no dotfiles)."""
    source = ROOT / name
    if not source.is_dir():  # e.g. an sdist made without MANIFEST.in: fail rather than ship a broken wheel
        raise SystemExit(f"setup.py: {source} is missing; the built package would not find its {name}/")
    return [
        path.relative_to(source)
        for path in sorted(source.rglob("*"))
        if path.is_file()
        and not any(part.startswith(".") or part == "__pycache__" for part in path.relative_to(source).parts)
        and path.suffix != ".pyc"
    ]


class build_py_with_shipped_folders(build_py):  # noqa: N801 (setuptools' command naming)
    def _shipped(self) -> list[tuple[Path, Path]]:
        if getattr(self, "editable_mode", False):  # an editable install reads the checkout's folders
            return []
        target = Path(self.build_lib, *SHIPPED_PACKAGE_DIR)
        return [(ROOT / name / rel, target / name / rel) for name in SHIPPED_FOLDERS for rel in shipped_files(name)]

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        shutil.rmtree(Path(self.build_lib, *SHIPPED_PACKAGE_DIR), ignore_errors=True)  # drop deleted files
        for source, target in self._shipped():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)

    def get_outputs(self, include_bytecode: bool = True) -> list[str]:
        return [*super().get_outputs(include_bytecode), *(str(target) for _, target in self._shipped())]


setup(cmdclass={"build_py": build_py_with_shipped_folders})
