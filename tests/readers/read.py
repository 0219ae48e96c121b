#!/usr/bin/env python3
"""Reads an env file with one real reader; prints {key: value} as JSON.

Usage: read.py READER FILE PREFIX
READER: sh (dash), bash, python-dotenv, systemd (systemd's own EnvironmentFile=
parser, load_env_file() in libsystemd-shared). Only keys starting with PREFIX
are printed. Used by tests/readers.rs; values never reach argv.
"""
import ctypes
import glob
import json
import os
import subprocess
import sys


def shell(prog, path):
    # A clean environment: what a deploy script's `set -a; . ./app.env` sees.
    env = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent-home"}
    out = subprocess.run(
        [prog, "-c", 'set -a; . "$1" || exit 3; exec env -0', "sh", path],
        env=env, capture_output=True, check=False,
    )
    if out.returncode != 0:
        sys.stderr.write(out.stderr.decode(errors="replace"))
        sys.exit(f"{prog} failed to source the file (exit {out.returncode})")
    result = {}
    for item in out.stdout.split(b"\0"):
        if b"=" in item:
            k, v = item.split(b"=", 1)
            result[k.decode()] = v.decode()
    return result


def python_dotenv(path):
    from dotenv import dotenv_values
    return dict(dotenv_values(path))


def systemd(path):
    libs = sorted(glob.glob("/usr/lib/*/systemd/libsystemd-shared-*.so")) + sorted(
        glob.glob("/lib/*/systemd/libsystemd-shared-*.so"))
    if not libs:
        sys.exit("systemd's libsystemd-shared is not installed (Debian package systemd)")
    lib = ctypes.CDLL(libs[-1])
    ret = ctypes.POINTER(ctypes.c_char_p)()
    lib.load_env_file.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.POINTER(ctypes.c_char_p))]
    lib.load_env_file.restype = ctypes.c_int
    r = lib.load_env_file(None, path.encode(), ctypes.byref(ret))
    if r < 0:
        sys.exit(f"systemd's load_env_file failed: {os.strerror(-r)}")
    result = {}
    i = 0
    while ret and ret[i] is not None:
        k, v = ret[i].split(b"=", 1)
        result[k.decode()] = v.decode()
        i += 1
    return result


def main():
    reader, path, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
    if reader in ("sh", "dash"):
        values = shell("dash", path)
    elif reader == "bash":
        values = shell("bash", path)
    elif reader == "python-dotenv":
        values = python_dotenv(path)
    elif reader == "systemd":
        values = systemd(path)
    else:
        sys.exit(f"unknown reader {reader}")
    print(json.dumps({k: v for k, v in values.items() if k.startswith(prefix)}))


main()
