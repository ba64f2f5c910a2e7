"""Loads the asyncunwind agent, then the program's own sitecustomize.

Put this directory first on PYTHONPATH (`asyncunwind agent-path` prints
it).  Python's `site` module imports `sitecustomize` at start-up and finds
this file.  It installs the agent's import hook (nothing else happens until
asyncio is imported), then finds the next `sitecustomize` on sys.path after
this directory, runs it, and leaves it in sys.modules["sitecustomize"]:
`import sitecustomize` gives the program's module, run exactly once.  Its
exceptions propagate as they would without the agent; the agent's own
never do.
"""


def _asyncunwind_bootstrap():
    import os
    import sys

    try:
        import asyncunwind_hook
        asyncunwind_hook.install()
    except Exception:
        pass

    try:
        here = os.path.dirname(__file__)
        later = None
        for k, entry in enumerate(sys.path):
            if entry == here:
                later = sys.path[k + 1:]
                break
        if later is None:  # spelt differently: compare resolved paths
            real = os.path.realpath(here)
            for k, entry in enumerate(sys.path):
                if os.path.realpath(entry or ".") == real:
                    later = sys.path[k + 1:]
                    break
        if later is None:
            return
        # The import system's own classes (importlib's, without importing
        # importlib: this runs in every Python process).
        bootstrap = sys.modules["_frozen_importlib"]
        external = sys.modules["_frozen_importlib_external"]
        spec = external.PathFinder.find_spec("sitecustomize", later)
        if spec is None or spec.loader is None:
            return
        module = bootstrap.module_from_spec(spec)
    except Exception:
        if os.environ.get("ASYNCUNWIND_AGENT_DEBUG") == "1":
            import traceback
            traceback.print_exc()
        return
    # What `import sitecustomize` returns once this file has run.
    sys.modules["sitecustomize"] = module
    spec.loader.exec_module(module)


_asyncunwind_bootstrap()
del _asyncunwind_bootstrap
