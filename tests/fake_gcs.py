"""A Google Cloud Storage stand-in on 127.0.0.1, so ``gs://`` workdirs are tested for real, offline.

``gcp-storage-emulator`` holds the bucket in memory. Each client is pointed at it the way it allows:
tensorstore (orbax's array data) by ``TENSORSTORE_GCS_HTTP_URL``; google-cloud-storage (orbax's bucket
check) and gcsfs (``etils.epath`` where TensorFlow is not installed) by ``STORAGE_EMULATOR_HOST``, gcsfs
anonymously (``FSSPEC_GCS_TOKEN=anon``) and without its bucket-type look-up (a gRPC service the emulator
lacks); and TensorFlow's GCS filesystem (``etils.epath`` where TensorFlow is installed), which has its
endpoints built in, through a local HTTPS proxy whose self-signed certificate it is told to trust. The
proxy relays one request per tunnel and papers over three gaps between TensorFlow's curl and the emulator
(chunked bodies sent with a Content-Length, Expect: 100-continue, http Location headers). google-auth, in
the processes started inside ``with FakeGCS``, probes no metadata server for credentials (``NO_GCE_CHECK``,
read when it is imported). Every socket has a timeout and every relay loop a bound.
"""

import datetime
import os
import re
import select
import shutil
import socket
import socketserver
import ssl
import tempfile
import threading
from http import HTTPStatus

GOOGLE_HOSTS = ("www.googleapis.com", "storage.googleapis.com")
TIMEOUT_S = 30
MAX_RELAYS = 100_000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _self_signed_certificate(directory: str) -> tuple[str, str]:
    """A certificate for the Google storage hosts and its key, written as PEM files in ``directory``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, GOOGLE_HOSTS[0])])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host) for host in GOOGLE_HOSTS]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    certificate_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(certificate_path, "wb") as file:
        file.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as file:
        file.write(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    return certificate_path, key_path


def _read_head(connection) -> bytes | None:
    """Bytes up to the end of an HTTP head (and whatever followed them in the same reads)."""
    received = b""
    while b"\r\n\r\n" not in received and len(received) < 65536:
        chunk = connection.recv(65536)
        if not chunk:
            return None
        received += chunk
    return received


def _proxy_handler(tls: ssl.SSLContext, emulator_port: int):
    class Tunnel(socketserver.BaseRequestHandler):
        """CONNECT, TLS with our certificate, then one request relayed to the emulator over plain HTTP."""

        def handle(self):
            client = self.request
            client.settimeout(TIMEOUT_S)
            head = _read_head(client)
            if not head or not head.startswith(b"CONNECT "):
                client.sendall(b"HTTP/1.1 405 CONNECT only\r\nContent-Length: 0\r\n\r\n")
                return
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            secure = tls.wrap_socket(client, server_side=True)
            request = _read_head(secure)
            if not request:
                return
            head, body = request.split(b"\r\n\r\n", 1)
            lines = head.split(b"\r\n")
            lowered = [line.lower() for line in lines]
            if b"transfer-encoding: chunked" in lowered:  # else the emulator stores the chunk framing
                lines = [line for line in lines if not line.lower().startswith(b"content-length:")]
            if b"expect: 100-continue" in lowered:  # else curl waits a second before each upload
                lines = [line for line in lines if line.lower() != b"expect: 100-continue"]
                secure.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
            upstream = socket.create_connection(("127.0.0.1", emulator_port), timeout=TIMEOUT_S)
            try:
                upstream.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
                for _ in range(MAX_RELAYS):
                    ready = [secure] if secure.pending() else select.select([secure, upstream], [], [], TIMEOUT_S)[0]
                    if not ready:
                        return
                    for source in ready:
                        data = source.recv(65536)
                        if not data:
                            return
                        if source is upstream:  # resumable uploads continue at the Location given: keep https
                            data = data.replace(b"\r\nLocation: http://", b"\r\nLocation: https://")
                        (upstream if source is secure else secure).sendall(data)
            finally:
                upstream.close()
                secure.close()

    return Tunnel


def _move(request, response, storage, *args, **kwargs):
    """GCS's objects.move within a bucket (``POST .../o/SOURCE/moveTo/o/DESTINATION``), with which gcsfs
    renames: a copy, then the source deleted; the destination's resource is the answer."""
    from gcp_storage_emulator.exceptions import NotFound
    from gcp_storage_emulator.handlers import objects

    bucket, source, destination = (request.params[name] for name in ("bucket_name", "object_id", "dest_object_id"))
    try:
        moved = objects._copy(request.base_url, storage, bucket, source, bucket, destination)
        storage.delete_file(bucket, source)
    except NotFound:
        response.status = HTTPStatus.NOT_FOUND
        return
    response.json(moved)


def _patch_emulator(server) -> None:
    """Accept empty uploads (TensorFlow's directory markers); send the object's generation with its
    content, as GCS does (tensorstore reads it; without it, a manifest read fails as malformed); and
    move objects (gcsfs's rename: without it, each rename waits out half a minute of retries of a 501)."""
    if getattr(server, "_patched_for_tests", False):
        return
    move_route = (
        rf"^{re.escape(server.settings.API_ENDPOINT)}/b/(?P<bucket_name>[-.\w]+)/o/(?P<object_id>.*[^/]+)"
        r"/moveTo/o/(?P<dest_object_id>.*[^/]+)$",
        {"POST": _move},
    )
    server.HANDLERS = (move_route, *server.HANDLERS)  # before the route of an object, which would match too
    read_data = server._read_data
    server._read_data = lambda handler, query: (
        b"" if (data := read_data(handler, query)) is None and query.get("uploadType") == ["media"] else data
    )

    def with_generation(download):
        def handler(request, response, storage, *args, **kwargs):
            download(request, response, storage, *args, **kwargs)
            if response.status.value == 200 or response.status.value == 206:
                metadata = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
                response["x-goog-generation"] = metadata["generation"]
                response["x-goog-metageneration"] = metadata["metageneration"]

        return handler

    download = server.objects.download
    server.objects.download = with_generation(download)  # also reached from objects.get with alt=media
    for _, handlers in server.HANDLERS:
        for method, function in list(handlers.items()):
            if function is download:
                handlers[method] = server.objects.download
    server._patched_for_tests = True


class FakeGCS:
    """``with FakeGCS("bucket"):`` makes ``gs://bucket/...`` an in-memory bucket on 127.0.0.1 for this process."""

    def __init__(self, bucket: str):
        self.bucket = bucket

    def __enter__(self) -> "FakeGCS":
        import logging

        from gcp_storage_emulator import server

        logging.getLogger("gcp_storage_emulator").setLevel(logging.CRITICAL)
        _patch_emulator(server)
        emulator_port = _free_port()
        self._emulator = server.create_server("127.0.0.1", emulator_port, in_memory=True, default_bucket=self.bucket)
        self._emulator.start()
        self._directory = tempfile.mkdtemp(prefix="fake_gcs_")
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        certificate, key = _self_signed_certificate(self._directory)
        tls.load_cert_chain(certificate, key)
        self._proxy = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _proxy_handler(tls, emulator_port))
        self._proxy.daemon_threads = True
        threading.Thread(target=self._proxy.serve_forever, daemon=True).start()
        emulator = f"http://127.0.0.1:{emulator_port}"
        environment = {
            "TENSORSTORE_GCS_HTTP_URL": emulator,
            "STORAGE_EMULATOR_HOST": emulator,
            "GOOGLE_AUTH_TOKEN_FOR_TESTING": "fake",  # tensorstore and TensorFlow: no credential look-up
            "FSSPEC_GCS_TOKEN": "anon",  # gcsfs: anonymous, no credential look-up
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",  # gcsfs: no bucket-type look-up (storage control gRPC)
            "NO_GCE_CHECK": "true",  # google-auth (etils' bucket-type check with TensorFlow): no metadata server
            "HTTPS_PROXY": f"http://127.0.0.1:{self._proxy.server_address[1]}",
            "CURL_CA_BUNDLE": certificate,
            "NO_PROXY": "127.0.0.1,localhost",
        }
        self._saved = {name: os.environ.get(name) for name in environment}
        os.environ.update(environment)
        return self

    def __exit__(self, *exc_info) -> None:
        for name, value in self._saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._proxy.shutdown()
        self._proxy.server_close()
        self._emulator.stop()
        shutil.rmtree(self._directory, ignore_errors=True)
