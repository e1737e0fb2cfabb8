"""`--resume` unpickles only the Tune state that this machine's study wrote.

Tune keeps a run's state in pickles (tuner.pkl; cloudpickle inside experiment_state-*.json and
search_gen_state-*.json; the searcher's and the callbacks' .pkl files; a trial's error.pkl; a `dict_checkpoint.pkl`
in a checkpoint directory if one is there), and `Tuner.restore` loads them: a file replaced in the storage path (a
shared NFS export, a bucket) would run code in the driver. So the driver records the sha256 of every such file as it
writes it, in a record kept outside the storage path (`trust_dir()`, mode 0600), and `--resume` refuses a run whose
storage holds one it did not write (docs/stack.md, "What --resume unpickles").

What is recorded, and when (study/watchdog.py, StateSeal): every guarded file of Tune's driver staging directory
(the local copy Tune uploads to the storage path) at the end of each Tune step and of the experiment; `tuner.pkl`,
which Tune writes to storage directly, right after the Tuner is made; a trial's `error.pkl` right after Tune wrote
it. A file Tune wrote between the last step's end and a SIGKILL of the driver is not in the record: that resume is
refused, naming the file (a Ctrl-C, or a fault the watch stops on, always ends with the experiment's end).
The running study itself never unpickles an error.pkl: the watch drops the trial's pointer to it once recorded, so the
result grid `fit()` returns reads the text trace instead (a file swapped in storage meanwhile is never loaded).
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from study.spec import SpecError

TRUST_ENV = "GAN_STUDY_TRUST_DIR"
KEEP = 64  # digests kept per file: Tune rewrites its state files in place; storage holds one of the recent ones


def trust_dir() -> Path:
    """Where the records live: $GAN_STUDY_TRUST_DIR, else $XDG_STATE_HOME/gan-study/trusted (~/.local/state)."""
    if os.environ.get(TRUST_ENV):
        return Path(os.environ[TRUST_ENV]).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(state) / "gan-study" / "trusted"


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def record_path(run_dir: str) -> Path:
    return trust_dir() / f"{hashlib.sha256(run_dir.encode()).hexdigest()[:32]}.json"


def guarded(rel: str) -> bool:
    """The files `--resume` may unpickle: the .json state files at the top of the run directory (Tune's JSON
    holds cloudpickle), and every .pkl (tuner.pkl, searcher and callback state, params.pkl, error.pkl, a
    dict_checkpoint.pkl in a checkpoint). Other files (.validate_storage_marker, result.json, state.pt, which
    the trainable loads with weights_only=True) are never unpickled."""
    return rel.endswith(".pkl") or ("/" not in rel and rel.endswith(".json"))


def _load(run_dir: str) -> dict[str, list[str]]:
    path = record_path(run_dir)
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text())["files"])


def _save(run_dir: str, files: dict[str, list[str]]) -> None:
    path = record_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"run_dir": run_dir, "files": files}, f)
    os.replace(tmp, path)


def vouch(run_dir: str, digests: dict[str, str]) -> None:
    """Add `rel -> sha256` pairs to the run's record (the newest KEEP per file)."""
    files = _load(run_dir)
    changed = False
    for rel, digest in digests.items():
        kept = files.setdefault(rel, [])
        if digest not in kept:
            files[rel] = (kept + [digest])[-KEEP:]
            changed = True
    if changed:
        _save(run_dir, files)


def _storage(run_dir: str):
    import pyarrow.fs

    if "://" in run_dir:
        return pyarrow.fs.FileSystem.from_uri(run_dir)
    return pyarrow.fs.LocalFileSystem(), run_dir


def stored_digests(run_dir: str) -> dict[str, str]:
    """sha256 of each guarded file in the run's storage directory (local path or URI)."""
    import pyarrow.fs

    fs, root = _storage(run_dir)
    out: dict[str, str] = {}
    for info in fs.get_file_info(pyarrow.fs.FileSelector(root, recursive=True, allow_not_found=True)):
        rel = info.path[len(root.rstrip("/")) + 1:]
        if info.type == pyarrow.fs.FileType.File and guarded(rel):
            with fs.open_input_stream(info.path) as f:
                out[rel] = digest(f.read())
    return out


def vouch_stored(run_dir: str, rel: str) -> None:
    """Record a file Tune wrote straight to storage (tuner.pkl, error.pkl), read back at once."""
    import pyarrow.fs

    fs, root = _storage(run_dir)
    path = f"{root.rstrip('/')}/{rel}"
    if fs.get_file_info(path).type == pyarrow.fs.FileType.File:
        with fs.open_input_stream(path) as f:
            vouch(run_dir, {rel: digest(f.read())})


def check(run_dir: str) -> None:
    """SpecError naming the first guarded file in storage that this machine's study did not write."""
    files = _load(run_dir)
    if not files:
        raise SpecError(f"--resume: this machine holds no record of the Tune state of {run_dir} (looked in "
                        f"{record_path(run_dir)}); the study resumes only state it wrote itself, since Tune's "
                        f"state is pickled. Copy that file from the machine that ran the study, or start afresh")
    for rel, digest in sorted(stored_digests(run_dir).items()):
        if digest not in files.get(rel, []):
            raise SpecError(f"--resume: {run_dir}/{rel} is not a file this study wrote (added or changed since); "
                            f"Tune would unpickle it, so the study does not resume. Remove it if it is not yours")
