"""Runs one workflow step in a fresh interpreter: `python step_child.py REQUEST RESULT`.

Standalone on purpose (no spechestra import, so it starts fast and cannot be shadowed): it loads
the compiled module from its file, calls its entry point with the step's inputs, and writes
`["ok", outputs]` or `["error", text]` to RESULT as JSON. A fresh process per step means a
rebuilt module is never served stale, and a hanging or crashing step cannot harm the orchestrator.

Results are data, never pickles: the orchestrator reads them, and unpickling what generated code
wrote would run whatever it put there (an object's `__reduce__`) outside the sandbox. The request
travels the other way (orchestrator to step), so it may be a pickle.
"""

import importlib.util
import inspect
import json
import os
import pickle
import sys
import traceback

ENTRY_POINTS = ("run", "main", "execute", "handler")


def load(module_path, import_dirs):
    for folder in reversed(import_dirs):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    name = os.path.splitext(os.path.basename(module_path))[0]
    spec = importlib.util.spec_from_file_location(name, module_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def entry_point(module, fallback):
    for name in ENTRY_POINTS + (fallback,):
        fn = getattr(module, name, None)
        if callable(fn) and getattr(fn, "__module__", None) == module.__name__:
            return fn
    public = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
    raise LookupError(f"{os.path.basename(module.__file__)} has no entry point: expected one of "
                      f"{', '.join(ENTRY_POINTS + (fallback,))}; it defines {', '.join(public) or 'nothing callable'}")


def call(fn, inputs):
    try:
        inspect.signature(fn).bind(**inputs)
    except TypeError:
        if len(inputs) == 1:  # one input under another name than the parameter's
            return fn(*inputs.values())
    except ValueError:  # builtins without a signature
        pass
    return fn(**inputs)


def main(request_path, result_path):
    with open(request_path, "rb") as handle:
        request = pickle.load(handle)
    try:
        module = load(request["module_path"], request["import_dirs"])
        value = call(entry_point(module, request["function"]), request["inputs"])
        outputs = value if isinstance(value, dict) else {"result": value}
        payload = as_data(outputs)
    except BaseException as exc:  # SystemExit too: the step failed, with its own message
        payload = json.dumps(["error", "".join(traceback.format_exception_only(type(exc), exc)).strip()
                              + "\n" + traceback.format_exc(limit=-3)])
    with open(result_path, "w", encoding="utf-8") as handle:
        handle.write(payload)


def as_data(outputs):
    """`["ok", outputs]` as JSON, or `["error", why]` when the outputs are not plain data."""
    try:
        return json.dumps(["ok", outputs], ensure_ascii=False)
    except (TypeError, ValueError, RecursionError) as exc:  # an object, a cycle, nesting past Python's depth
        why = "it refers to itself" if "ircular" in str(exc) else (
            "it is nested too deeply" if isinstance(exc, RecursionError) else str(exc))
        return json.dumps(["error", f"the step's outputs are not plain data ({why}): return dicts, lists, "
                                    "strings, numbers, booleans or None"])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
