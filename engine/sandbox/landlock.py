"""Landlock (Linux 5.13+): the kernel refuses writes outside the folders a sandboxed child may write.

The audit hook in :mod:`engine.sandbox.child` sees Python's own writes and
names them; this is the layer it cannot be talked out of: code that writes
through ``ctypes``, a C extension or a process it started is held to the
same folders, because the kernel checks every open, rename, unlink and mkdir
of this process and of everything it starts afterwards. Reading stays
allowed everywhere (the module must import the standard library and its own
dependencies). With ABI 6 and later the child also may not signal processes
outside its own sandbox (it cannot kill the engine or its worker).

Called through ``ctypes`` with the raw system calls: the ``landlock``
package on PyPI needs the same three calls and adds nothing else we use.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable
from pathlib import Path

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same on every Linux architecture
_VERSION_FLAG = 1 << 0  # LANDLOCK_CREATE_RULESET_VERSION
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

WRITE_FILE, REMOVE_DIR, REMOVE_FILE = 1 << 1, 1 << 4, 1 << 5
MAKE_CHAR, MAKE_DIR, MAKE_REG, MAKE_SOCK, MAKE_FIFO, MAKE_BLOCK, MAKE_SYM = (1 << n for n in range(6, 13))
REFER, TRUNCATE = 1 << 13, 1 << 14  # ABI 2, ABI 3
SCOPE_SIGNAL = 1 << 1  # ABI 6
FILE_RIGHTS = WRITE_FILE | TRUNCATE
"""The rights that apply to a file (a rule on a file may grant no directory right)."""


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64)]


class _RulesetAttrScoped(ctypes.Structure):
    _fields_ = [*_RulesetAttr._fields_, ("scoped", ctypes.c_uint64)]


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def abi_version() -> int:
    """The kernel's Landlock ABI (0: none, or disabled at boot)."""
    try:
        version = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_VERSION_FLAG))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def write_rights(abi: int) -> int:
    """Every write-like right this ABI knows: these are the ones the ruleset handles (denies by default)."""
    rights = WRITE_FILE | REMOVE_DIR | REMOVE_FILE | MAKE_CHAR | MAKE_DIR | MAKE_REG
    rights |= MAKE_SOCK | MAKE_FIFO | MAKE_BLOCK | MAKE_SYM
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    return rights


def restrict_writes(writable: Iterable[Path], abi: int) -> None:
    """From now on this process (and its children) may write only beneath ``writable``.

    Raises OSError if the kernel refuses; the caller decides whether running
    without it is acceptable (the audit hook still applies).
    """
    libc = _libc()
    handled = write_rights(abi)
    scoped = abi >= 6
    attr: ctypes.Structure = (
        _RulesetAttrScoped(handled, 0, SCOPE_SIGNAL) if scoped else _RulesetAttr(handled, 0)
    )
    ruleset = libc.syscall(
        _CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)), ctypes.c_uint32(0)
    )
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset")
    try:
        for path in writable:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            try:
                allowed = handled if os.path.isdir(path) else handled & FILE_RIGHTS
                rule = _PathBeneathAttr(allowed, fd)
                if libc.syscall(_ADD_RULE, ruleset, _RULE_PATH_BENEATH, ctypes.byref(rule), 0) < 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule {path}")
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        if libc.syscall(_RESTRICT_SELF, ruleset, ctypes.c_uint32(0)) < 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self")
    finally:
        os.close(ruleset)
