"""A real Docker daemon for tests, on its own socket and directories.

:class:`Dockerd` starts Debian's ``dockerd`` without a bridge or iptables changes
(``--bridge=none --iptables=false``), with its own data root, exec root, pid file and
socket, so it never touches another daemon; containers run with ``--network none``.
Images are made from a local root filesystem with ``docker import``. :meth:`Dockerd.stop`
removes the containers and images it made and stops the daemon by its pid.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

DOCKERD = shutil.which("dockerd") or "/usr/sbin/dockerd"
BUSYBOX = Path("/bin/busybox")


class Dockerd:
    """A private dockerd (see the module docstring)."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="pyt-dockerd-", dir="/tmp"))
        self.socket = str(self.root / "docker.sock")
        self.exec_root = self.root / "exec"
        self.log = open(self.root / "dockerd.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                DOCKERD,
                "--bridge=none",
                "--iptables=false",
                "--ip-masq=false",
                "--data-root",
                str(self.root / "data"),
                "--exec-root",
                str(self.exec_root),
                "--pidfile",
                str(self.root / "dockerd.pid"),
                "-H",
                f"unix://{self.socket}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.images: list[str] = []
        self.containers: list[str] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited: {(self.root / 'dockerd.log').read_text()[-2000:]}")
            if os.path.exists(self.socket) and self.docker("version", check=False).returncode == 0:
                return
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("dockerd did not answer within 60 s")

    @property
    def containerd_socket(self) -> str:
        """The socket of the containerd this dockerd runs."""
        return str(self.exec_root / "containerd" / "containerd.sock")

    def docker(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run the docker client against this daemon."""
        return subprocess.run(
            ["docker", "-H", f"unix://{self.socket}", *args],
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def import_image(self, name: str, files: dict[str, Path]) -> str:
        """An image of busybox (sh, sleep, cat) plus ``files`` (path in the image -> source); its id."""
        rootfs = self.root / f"rootfs-{len(self.images)}"
        (rootfs / "bin").mkdir(parents=True)
        shutil.copy2(BUSYBOX, rootfs / "bin" / "busybox")
        for applet in ("sh", "sleep", "cat", "true"):
            (rootfs / "bin" / applet).symlink_to("busybox")
        for inside, source in files.items():
            target = rootfs / inside.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
        archive = self.root / "rootfs.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(rootfs, arcname=".")
        with open(archive, "rb") as data:
            subprocess.run(
                ["docker", "-H", f"unix://{self.socket}", "import", "-", name],
                stdin=data,
                capture_output=True,
                check=True,
                timeout=60,
            )
        self.images.append(name)
        return self.docker("image", "inspect", "--format", "{{.Id}}", name).stdout.strip()

    def run(self, *args: str) -> str:
        """``docker run --network none ARGS``; the container id (detached runs) or its output."""
        out = self.docker("run", "--network", "none", *args).stdout.strip()
        return out

    def stop(self) -> None:
        """Remove what was made, stop the daemon (by its pid), delete its directories."""
        if self.proc.poll() is None:
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
            for image in self.images:
                self.docker("rmi", "-f", image, check=False)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        subprocess.run(["umount", "-R", str(self.root / "data")], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)
