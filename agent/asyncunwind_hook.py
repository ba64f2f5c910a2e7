"""The asyncunwind agent's import hook: patches asyncio when it is imported.

Start-up cost is what matters here: a program that never imports asyncio
pays for compiling this small file and one meta path finder that answers
"not mine" to every import.  When asyncio.base_events or uvloop has run,
the finder imports asyncunwind_agent (the recorder) and lets it patch.
"""

import sys

# Modules whose import triggers the agent; asyncunwind_agent.WATCHED.
WATCHED = ("asyncio.base_events", "uvloop")


def _patch(name):
    try:
        import asyncunwind_agent
        asyncunwind_agent.patch(name)
    except Exception:
        _log("loading the agent")


def _log(what):
    try:
        import os
        if os.environ.get("ASYNCUNWIND_AGENT_DEBUG") == "1":
            import traceback
            sys.stderr.write("asyncunwind agent: %s failed\n" % what)
            traceback.print_exc()
    except Exception:
        pass


class PostImportFinder(object):
    """A meta path finder that finds nothing itself: for the WATCHED
    modules it asks the finders after it for the spec, and has the module's
    own loader call the patch once the module has run."""

    def find_spec(self, name, path=None, target=None):
        if name not in WATCHED:
            return None
        try:
            return self._hooked_spec(name, path, target)
        except Exception:
            _log("import hook for %s" % name)
            return None  # the import system finds it without us

    def _hooked_spec(self, name, path, target):
        spec = None
        for finder in list(sys.meta_path):
            find = getattr(finder, "find_spec", None)
            if finder is self or find is None:
                continue
            spec = find(name, path, target)
            if spec is not None:
                break
        loader = getattr(spec, "loader", None)
        orig_exec = getattr(loader, "exec_module", None)
        if orig_exec is None:
            return None

        def exec_module(module):
            if getattr(module, "__name__", None) != name:
                # A loader shared by several modules (zipimport, frozen
                # applications) runs another one first: not ours.
                return orig_exec(module)
            try:
                del loader.exec_module
            except Exception:
                pass
            orig_exec(module)
            _patch(name)

        # An instance attribute: the loader, and so module.__loader__, stays
        # the module's own object.  The call for our module removes it.
        loader.exec_module = exec_module
        return spec

    def invalidate_caches(self):
        pass


_installed = False


def install():
    """Adds the finder (once), and patches what is already imported (a .pth
    file may import asyncio before sitecustomize runs).  Never raises."""
    global _installed
    try:
        if not _installed:
            _installed = True
            sys.meta_path.insert(0, PostImportFinder())
        for name in WATCHED:
            if name in sys.modules:
                _patch(name)
    except Exception:
        _log("install")
