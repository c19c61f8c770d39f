"""Privacy: screening a photo opens no network connection and writes nothing to disk."""
import builtins
import socket

from clarityx.screening.pipeline import analyse


def test_screening_opens_no_connection_and_writes_no_file(classifier, retina_png, monkeypatch):
    data = retina_png.read_bytes()  # as an upload arrives: bytes in memory
    attempts, writes = [], []
    connect, open_ = socket.socket.connect, builtins.open

    def guarded_connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if sock.family in (socket.AF_INET, socket.AF_INET6) and host not in ("127.0.0.1", "::1", "localhost"):
            attempts.append(address)
            raise OSError("network blocked by the test")
        return connect(sock, address)

    def guarded_open(file, mode="r", *args, **kwargs):
        if any(m in mode for m in "wax+"):
            writes.append(file)
        return open_(file, mode, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(builtins, "open", guarded_open)
    result = analyse(classifier, data)
    assert result.status in ("ok", "rejected")
    assert attempts == [] and writes == []
