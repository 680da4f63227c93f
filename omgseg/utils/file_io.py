"""Writing files so that a reader never sees a half-written one, and so that a tool never
overwrites or deletes a file it did not write.

* :func:`atomic_output`: one file, written to a temporary name and renamed into place.
* :class:`ManagedOutput`: the whole output of a data-preparation tool (a folder it owns, or named
  entries inside a user's dataset folder), built in a temporary sibling, moved into place when
  complete, and recorded in a manifest (``.omgseg-manifest*.json``) that lists every file the
  tool wrote. A later run replaces only the files the manifest lists.
"""
import contextlib
import functools
import json
import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Set, Union

__all__ = ["atomic_output", "default_mode", "ManagedOutput", "OutputRefusedError",
           "MANIFEST_NAME", "read_manifest"]

logger = logging.getLogger(__name__)

PathLike = Union[str, os.PathLike]
MANIFEST_NAME = ".omgseg-manifest.json"


@functools.lru_cache(maxsize=None)
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def default_mode(is_dir: bool = False) -> int:
    """The permission bits a plain ``open`` / ``mkdir`` would give (temp files are 0600)."""
    return (0o777 if is_dir else 0o666) & ~_umask()


@contextlib.contextmanager
def atomic_output(path: str, suffix: str = "") -> Iterator[str]:
    """Yield a temporary path beside ``path``; once the block succeeds it replaces ``path``.

    On any error the temporary file is removed and ``path`` is left as it was.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _write_json_atomic(obj: Any, path: Path) -> None:
    with atomic_output(str(path), suffix=".json") as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=1)


def _normalised(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists), for comparisons."""
    return json.loads(json.dumps(obj))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def read_manifest(path: PathLike) -> Optional[Dict[str, Any]]:
    """The parsed manifest at ``path``; None if absent. A malformed one raises ValueError."""
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return None
    except ValueError as e:
        raise ValueError(f"{path}: not a valid manifest ({e})") from e
    if not isinstance(data, dict) or not isinstance(data.get("files"), list):
        raise ValueError(f"{path}: not a valid manifest (no 'files' list)")
    return data


def _is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and not any(path.iterdir())


def _list_files(folder: Path, skip: str) -> List[str]:
    """Relative POSIX paths of every file under ``folder`` except its top-level ``skip``."""
    out = []
    for dirpath, _, names in os.walk(folder):
        for name in names:
            rel = Path(dirpath, name).relative_to(folder).as_posix()
            if rel != skip:
                out.append(rel)
    return sorted(out)


class OutputRefusedError(FileExistsError):
    """Writing the output would overwrite or delete files this tool did not write."""


class ManagedOutput:
    """The output of a data-preparation tool, which never overwrites or deletes a user's file.

    Two shapes of output:

    * ``entries=None``: ``root`` is a folder the tool owns. It must be absent, empty, or hold the
      manifest ``root/.omgseg-manifest.json`` of the same tool; anything else is refused.
    * ``entries=[...]`` (with ``key``): the tool writes the named entries (files or folders,
      relative to ``root``) inside a folder that also holds the user's data (e.g. Mask2Former's
      ``ADEChallengeData2016/ade20k_panoptic_val.json``). Each entry must be absent or listed in
      the manifest ``root/.omgseg-manifest.<key>.json``.

    ``force=True`` regenerates an up-to-date output and also accepts a folder / entries without
    a manifest (the user states that the tool wrote them, e.g. an older version): files at the
    output's paths are then replaced, and nothing else is touched. A file given as ``root`` is
    always refused.

    Usage::

        out = ManagedOutput(root, script="prepare_x.py", version="1", parameters=vars(args))
        if not out.up_to_date():
            with out.writing() as tmp:   # a fresh temporary sibling folder
                convert(..., tmp)        # write the output as if tmp were root

    :meth:`writing` builds into ``.<name>.omgseg-tmp-<pid>`` (beside ``root``, or inside it for
    ``entries``) and, when the block succeeds, moves it into place: a new folder by one rename,
    an existing one file by file after recording the old and new files in the manifest (state
    ``replacing``), then deletes the files the previous manifest listed that the new output no
    longer has. The manifest is written last (state ``complete``). An interrupted or killed run
    leaves the previous output as it was (or, if killed while moving, a manifest that is not
    ``complete``, so the next run regenerates); its temporary folder is removed by the next run.
    """

    def __init__(self, root: PathLike, *, script: str, version: str, parameters: Dict[str, Any],
                 entries: Optional[Sequence[str]] = None, key: Optional[str] = None,
                 force: bool = False) -> None:
        self.root = Path(os.path.abspath(os.path.expanduser(os.fspath(root))))
        self.script = script
        self.version = str(version)
        self.parameters = _normalised(parameters)
        self.force = force
        if entries is not None:
            if not key:
                raise ValueError("ManagedOutput: 'entries' needs a 'key' naming the output")
            self.entries = [Path(e).as_posix() for e in entries]
            bad = [e for e in self.entries if Path(e).is_absolute() or ".." in Path(e).parts]
            if bad or not self.entries:
                raise ValueError(f"ManagedOutput: entries must be relative paths, got {entries}")
            self.manifest_name = f".omgseg-manifest.{key}.json"
            self._tmp_prefix = f".omgseg-tmp.{key}."
            self._tmp_parent = self.root
        else:
            self.entries = None
            self.manifest_name = MANIFEST_NAME
            self._tmp_prefix = f".{self.root.name}.omgseg-tmp-"
            self._tmp_parent = self.root.parent

    # ------------------------------------------------------------------ inspection
    @property
    def manifest_path(self) -> Path:
        return self.root / self.manifest_name

    def describe(self) -> str:
        """The output's path(s), for messages."""
        if self.entries is None:
            return str(self.root)
        return ", ".join(str(self.root / e) for e in self.entries)

    def _how_to_proceed(self) -> str:
        return (f"Choose an empty or new output location, or move those files away; if "
                f"{self.script} wrote them (e.g. an older version), pass --force to replace "
                "its files there (nothing else is deleted).")

    def _manifest(self) -> Optional[Dict[str, Any]]:
        """This output's manifest if it is this tool's; raises OutputRefusedError otherwise."""
        try:
            manifest = read_manifest(self.manifest_path)
        except ValueError as e:
            if self.force:
                return None
            raise OutputRefusedError(f"{e}. Move it away, or pass --force.") from e
        if manifest is not None and manifest.get("script") != self.script:
            raise OutputRefusedError(
                f"{self.describe()} was written by {manifest.get('script')!r}, not by "
                f"{self.script} ({self.manifest_path}). Choose another output location.")
        return manifest

    def _inspect(self) -> Optional[Dict[str, Any]]:
        """Refuse unsafe outputs; return this tool's manifest (None for a new output)."""
        if self.root.exists() and not self.root.is_dir():
            raise OutputRefusedError(
                f"{self.root} is a file, not a folder: the output must be a folder. "
                "Choose a folder path (an absent or empty one).")
        manifest = self._manifest() if self.root.is_dir() else None
        if manifest is not None or self.force:
            return manifest
        if self.entries is None:
            if self.root.is_dir() and any(self.root.iterdir()):
                raise OutputRefusedError(
                    f"{self.root} is not empty and was not written by {self.script} (no "
                    f"{self.manifest_name} in it). {self._how_to_proceed()}")
        else:
            present = [e for e in self.entries if os.path.lexists(self.root / e)]
            if present:
                raise OutputRefusedError(
                    f"{', '.join(str(self.root / e) for e in present)} already exist(s) and "
                    f"{self.script} has no record of writing it ({self.manifest_path} is "
                    f"absent). {self._how_to_proceed()}")
        return None

    def _clean_leftovers(self) -> None:
        """Remove temporary folders of this output left by interrupted runs on this host;
        refuse while another run is still writing one."""
        if not self._tmp_parent.is_dir():
            return
        busy = []
        for tmp in sorted(self._tmp_parent.glob(self._tmp_prefix + "*")):
            if _is_empty_dir(tmp):  # killed before it wrote anything: the pid is in the name
                pid = tmp.name[len(self._tmp_prefix):].split("-")[0]
                if pid.isdigit() and not _pid_alive(int(pid)):
                    tmp.rmdir()
                continue
            try:
                marker = read_manifest(tmp / self.manifest_name) if tmp.is_dir() else None
            except ValueError:
                marker = None
            if (marker is None or marker.get("state") != "staging"
                    or marker.get("script") != self.script
                    or marker.get("host") != socket.gethostname()
                    or not isinstance(marker.get("pid"), int)):
                continue  # not one of ours (or not from this host): leave it alone
            if _pid_alive(marker["pid"]):
                busy.append((marker["pid"], tmp))
                continue
            logger.info("Removing %s, left by an interrupted run (pid %d).", tmp, marker["pid"])
            shutil.rmtree(tmp, ignore_errors=True)
        if busy:
            pid, tmp = busy[0]
            raise OutputRefusedError(
                f"Another run (pid {pid}) is writing {self.describe()} into {tmp}. Wait for it "
                f"to finish; if no such run is active, delete {tmp}.")

    def up_to_date(self) -> bool:
        """True if the output is complete and was written by the same tool version with the same
        parameters (never with ``force``). Refuses unsafe outputs (:class:`OutputRefusedError`)
        and removes leftovers of interrupted runs."""
        manifest = self._inspect()
        self._clean_leftovers()
        if self.force or manifest is None:
            return False
        return (manifest.get("state") == "complete" and manifest.get("version") == self.version
                and manifest.get("parameters") == self.parameters
                and all((self.root / f).is_file() for f in manifest["files"]))

    # ------------------------------------------------------------------------ writing
    def _record(self, state: str, files: Sequence[str], **extra: Any) -> Dict[str, Any]:
        return dict({"script": self.script, "version": self.version, "state": state,
                     "parameters": self.parameters}, **extra, files=sorted(files))

    @contextlib.contextmanager
    def writing(self) -> Iterator[Path]:
        """Yield an empty temporary folder laid out like ``root``; commit it when the block
        succeeds, remove it when the block raises (``root`` is then left as it was)."""
        self._inspect()
        self._clean_leftovers()
        self._tmp_parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{self._tmp_prefix}{os.getpid()}-",
                                    dir=self._tmp_parent))
        try:
            _write_json_atomic(self._record("staging", [], pid=os.getpid(),
                                            host=socket.gethostname()),
                               tmp / self.manifest_name)
            yield tmp
            self._commit(tmp)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)

    def _commit(self, tmp: Path) -> None:
        manifest = self._inspect()  # the output may have changed while we were writing
        new = _list_files(tmp, self.manifest_name)
        if self.entries is not None:
            outside = [f for f in new if not any(f == e or f.startswith(e + "/")
                                                 for e in self.entries)]
            if outside:
                raise ValueError(f"{self.script} wrote {outside[:3]} outside its declared "
                                 f"entries {self.entries}")
        if self.entries is None and (not self.root.exists() or _is_empty_dir(self.root)):
            os.chmod(tmp, default_mode(is_dir=True))
            _write_json_atomic(self._record("complete", new), tmp / self.manifest_name)
            os.replace(tmp, self.root)  # one rename: readers see all of it or nothing
            return
        old: Set[str] = set(manifest["files"]) if manifest is not None else set()
        clash = [f for f in new if self._type_clash(f)]
        if clash:
            raise OutputRefusedError(
                f"{self.root / clash[0]}: a folder (or a file on its path) is in the way of a "
                f"file {self.script} writes. Move it away.")
        if not self.force:
            taken = [f for f in new if f not in old and os.path.lexists(self.root / f)]
            if taken:
                raise OutputRefusedError(
                    f"{self.script} would overwrite files it did not write: "
                    f"{', '.join(str(self.root / f) for f in taken[:5])}"
                    f"{' ...' if len(taken) > 5 else ''}. {self._how_to_proceed()}")
        self.root.mkdir(parents=True, exist_ok=True)
        _write_json_atomic(self._record("replacing", old | set(new)), self.manifest_path)
        self._move_tree(tmp, self.root, skip=self.manifest_name)
        for rel in sorted(old - set(new)):
            path = self.root / rel
            if path.is_file() or path.is_symlink():
                path.unlink()
            self._remove_empty_parents(path.parent)
        _write_json_atomic(self._record("complete", new), self.manifest_path)

    def _type_clash(self, rel: str) -> bool:
        """True if writing the file ``rel`` under ``root`` would need to replace a folder, or
        a file standing where one of its parent folders goes."""
        target = self.root / rel
        if target.is_dir() and not target.is_symlink():
            return True
        parent = target.parent
        while parent != self.root:
            if os.path.lexists(parent) and not parent.is_dir():
                return True
            parent = parent.parent
        return False

    def _move_tree(self, src: Path, dst: Path, skip: Optional[str] = None) -> None:
        """Move the contents of ``src`` (but its entry ``skip``) into ``dst``: whole folders by
        one rename when ``dst`` has none of that name, files by ``os.replace``."""
        for child in sorted(src.iterdir()):
            if child.name == skip:
                continue
            target = dst / child.name
            if not os.path.lexists(target):
                os.rename(child, target)
            elif child.is_dir():
                self._move_tree(child, target)
            else:
                os.replace(child, target)

    def _remove_empty_parents(self, folder: Path) -> None:
        while folder != self.root and self.root in folder.parents and _is_empty_dir(folder):
            folder.rmdir()
            folder = folder.parent
