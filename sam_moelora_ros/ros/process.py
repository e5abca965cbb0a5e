"""The perception node as a child process: start it, follow its output, notice its exit, stop it.

One supervisor for everything that runs the node in a process of its own (``replay_live``, the
ROS integration tests, the node benchmark), because each hit the same problems:

- a child whose output pipe is not drained blocks once the pipe is full, so a reader thread
  drains it line by line (kept in memory, and in a log file when one is given);
- a node that fails at start-up (a bad parameter) exits within seconds, while whoever started
  it would otherwise wait for a subscriber until a long time-out: :meth:`NodeProcess.check` and
  :meth:`NodeProcess.wait_for_log` raise :class:`NodeExited` with the node's last lines at once;
- stopping is Ctrl-C (SIGINT, the node's clean shutdown path), then a kill if that hangs.

No rclpy here: the parent may be any process (a test, a CLI) and needs no ROS context.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path

from sam_moelora_ros.errors import SamMoeLoraError

NODE_NAME = "sam_moelora_perception"
"""The node's ROS name (its outputs are ``/<NODE_NAME>/labels`` ...); defined here, without
rclpy, so the tools that start and address the node need not import it."""
NODE_MODULE = "sam_moelora_ros.ros.node"
NODE_SCRIPT = "perception_node"
MAX_LINES = 100_000
"""Output lines kept in memory (a log file, when given, keeps them all)."""
TAIL_LINES = 60
"""Lines of output quoted when the node exited unexpectedly."""


class NodeExited(SamMoeLoraError, RuntimeError):
    """The node process ended while it was expected to run; the message quotes its output."""


def node_command(ros_args: Sequence[str] = (), *, script: bool = False) -> list[str]:
    """The node's command line: ``python -m sam_moelora_ros.ros.node --ros-args ...``.

    ``script=True`` runs the ``perception_node`` console script beside this interpreter
    instead, as users start it (it checks the installed entry point too).
    """
    if script:
        command = [str(Path(sys.executable).parent / NODE_SCRIPT)]
    else:
        command = [sys.executable, "-m", NODE_MODULE]
    return [*command, "--ros-args", *ros_args]


class NodeProcess:
    """A node subprocess with its output drained line by line by a reader thread.

    Args:
        command: the command line (see :func:`node_command`).
        env: its environment (None: this process's).
        log: a file that receives every line as it arrives (None: memory only).
        cwd: its working directory (None: this process's).
    """

    def __init__(
        self,
        command: Sequence[str],
        env: Mapping[str, str] | None = None,
        *,
        log: Path | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.command = list(command)
        self.log = log
        self._lines: deque[str] = deque(maxlen=MAX_LINES)
        self._lock = threading.Lock()
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            self.command,
            env=None if env is None else dict(env),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        self._reader = threading.Thread(target=self._drain, name="node-output", daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None  # Popen(stdout=PIPE)
        sink = None if self.log is None else self.log.open("w", encoding="utf-8")
        try:
            for line in self.proc.stdout:
                if sink is not None:
                    sink.write(line)
                    sink.flush()
                with self._lock:
                    self._lines.append(line.rstrip("\n"))
        finally:
            if sink is not None:
                sink.close()

    @property
    def lines(self) -> list[str]:
        """The output so far, one entry per line."""
        with self._lock:
            return list(self._lines)

    @property
    def output(self) -> str:
        """The output so far as one string."""
        return "\n".join(self.lines)

    def _exited(self, doing: str) -> NodeExited:
        self._reader.join(2)  # the last lines, written just before the exit
        where = "" if self.log is None else f" ({self.log})"
        tail = "\n".join(self.lines[-TAIL_LINES:])
        return NodeExited(
            f"the perception node exited with code {self.proc.returncode} {doing}; "
            f"its output{where}:\n{tail}"
        )

    def check(self) -> None:
        """Raise :class:`NodeExited` (quoting the node's output) if the node has exited."""
        if self.proc.poll() is not None:
            raise self._exited("while it was expected to run")

    def wait_for_log(self, pattern: str, timeout: float = 60.0) -> str:
        """The first output line matching ``pattern`` (a regex), waiting up to ``timeout`` s.

        Raises :class:`NodeExited` as soon as the node exits without having printed it, and
        :class:`TimeoutError` (with the output) when it is still running after ``timeout``.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            exited = self.proc.poll() is not None
            if exited:
                self._reader.join(2)  # everything it printed is in before we look
            for line in self.lines:
                if regex.search(line):
                    return line
            if exited:
                raise self._exited(f"before printing {pattern!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"node did not log {pattern!r} within {timeout} s:\n{self.output}"
                )
            time.sleep(0.05)

    def rss_mb(self) -> float:
        """Resident memory of the node process in MiB (Linux ``/proc``)."""
        with open(f"/proc/{self.proc.pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        raise RuntimeError(f"no VmRSS in /proc/{self.proc.pid}/status")

    def stop(self, timeout: float = 15.0) -> tuple[int, float]:
        """SIGINT (as Ctrl-C), then a kill after ``timeout`` s; ``(exit code, seconds taken)``."""
        start = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(2)
        return self.proc.returncode, time.monotonic() - start
