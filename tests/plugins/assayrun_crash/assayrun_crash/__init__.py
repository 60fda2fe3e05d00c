"""A test-only reader that misbehaves as a native library can: a file starting 'CRASHTEST abort' kills its
process with SIGABRT, 'CRASHTEST sleep N' hangs N seconds. For the batch's worker isolation tests."""

import os
import time

import assayrunner


def sniff(source):
    return 1.0 if source.content.startswith(b"CRASHTEST") else 0.0


def read(source):
    words = source.content.split()
    if words[1] == b"abort":
        os.abort()
    time.sleep(float(words[2]))
    raise assayrunner.UserError("slept and read nothing", file=source.path)


@assayrunner.hookimpl
def register_readers(register):
    register(assayrunner.Reader(name="crashtest", sniff=sniff, read=read, title="misbehaving test reader"))
