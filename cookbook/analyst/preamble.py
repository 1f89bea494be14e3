# glm analyze sandbox preamble: runs before the model's code, inside the
# sandboxed interpreter (python3 -I preamble.py CELL.py). It applies the
# resource limits from the environment, blocks network sockets, makes
# matplotlib save figures as PNG files, then runs CELL.py as __main__.
import os, sys, resource

def _limit(res, value, slack=0):
    if value > 0:
        # soft < hard where a signal should come first (SIGXCPU before SIGKILL);
        # the hard limit cannot be raised again by the code.
        resource.setrlimit(res, (value, value + slack))

_env = os.environ.get
_limit(resource.RLIMIT_AS, int(_env("GLMKIT_MEM_BYTES", "0")))
_limit(resource.RLIMIT_CPU, int(_env("GLMKIT_CPU_SECONDS", "0")), 1)
_limit(resource.RLIMIT_FSIZE, int(_env("GLMKIT_FILE_BYTES", "0")))
_limit(resource.RLIMIT_NOFILE, 256)
# Processes and threads. Inside the sandbox's own user namespace the kernel
# counts only the run's tasks against it, so it bounds a fork bomb without
# touching the caller's other processes.
_limit(resource.RLIMIT_NPROC, int(_env("GLMKIT_MAX_PROCS", "0")))
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

_NET_MSG = "network access is disabled in the glm analyze sandbox"

if _env("GLMKIT_NO_NETWORK") == "1":
    import socket as _socket_mod

    _real_socket = _socket_mod.socket

    class _GuardedSocket(_real_socket):
        def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
            # Local AF_UNIX sockets stay allowed (multiprocessing uses them).
            if fileno is None and family in (-1, _socket_mod.AF_INET, _socket_mod.AF_INET6):
                raise PermissionError(_NET_MSG)
            super().__init__(family, type, proto, fileno)

    def _deny(*args, **kwargs):
        raise PermissionError(_NET_MSG)

    _socket_mod.socket = _GuardedSocket
    _socket_mod.SocketType = _GuardedSocket
    for _name in ("create_connection", "getaddrinfo", "gethostbyname", "gethostbyname_ex",
                  "gethostbyaddr", "create_server", "socketpair"):
        if hasattr(_socket_mod, _name):
            setattr(_socket_mod, _name, _deny)

# Figures: force the non-interactive Agg backend and make plt.show() save
# every open figure as figure_N.png in the working directory (the model's
# code usually ends with plt.show(), which would otherwise draw nothing).
os.environ["MPLBACKEND"] = "Agg"
_fig_count = [0]

def _save_open_figures(plt):
    for num in list(plt.get_fignums()):
        fig = plt.figure(num)
        if getattr(fig, "_glmkit_saved", False):
            continue
        _fig_count[0] += 1
        name = "figure_%d.png" % _fig_count[0]
        while os.path.exists(name):
            _fig_count[0] += 1
            name = "figure_%d.png" % _fig_count[0]
        fig.savefig(name, dpi=100, bbox_inches="tight")
        fig._glmkit_saved = True
        print("[figure saved: %s]" % name)

def _patch_pyplot(plt):
    # A figure the code saved itself is not saved again at exit.
    from matplotlib.figure import Figure
    _savefig = Figure.savefig
    def savefig(self, *args, **kwargs):
        self._glmkit_saved = True
        return _savefig(self, *args, **kwargs)
    Figure.savefig = savefig
    def show(*args, **kwargs):
        _save_open_figures(plt)
        plt.close("all")
    plt.show = show
    import atexit
    atexit.register(lambda: _save_open_figures(plt))

import importlib.abc, importlib.util

class _PyplotHook(importlib.abc.MetaPathFinder):
    # Patching only when pyplot is imported keeps code that never plots from
    # paying for importing matplotlib.
    def find_spec(self, name, path=None, target=None):
        if name != "matplotlib.pyplot":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module
        def patched(module):
            exec_module(module)
            _patch_pyplot(module)
        spec.loader.exec_module = patched
        return spec

sys.meta_path.insert(0, _PyplotHook())

import warnings
warnings.filterwarnings("ignore", message=".*non-interactive.*")

import runpy, traceback
_cell = os.path.abspath(sys.argv[1])
sys.argv = [_cell]
try:
    runpy.run_path(_cell, run_name="__main__")
except SystemExit:
    raise
except BaseException as _e:
    # Show the model only its own frames, not the preamble's or runpy's.
    _tb = _e.__traceback__
    while _tb is not None and _tb.tb_frame.f_code.co_filename != _cell:
        _tb = _tb.tb_next
    traceback.print_exception(type(_e), _e, _tb or _e.__traceback__)
    sys.exit(1)
