"""The crawler's HTTP client: addresses checked as it connects, every socket wait capped by the download's deadline,
and content codings undone with a bound on the decoded size of every layer."""
import ipaddress
import socket
import threading
import time
import zlib

import httpcore
import httpx

# Cloud metadata services (AWS/GCP/Azure/Oracle 169.254.169.254, AWS ECS 169.254.170.2, AWS IPv6 fd00:ec2::254,
# Alibaba 100.100.100.200, Azure's wireserver 168.63.129.16): refused with the link-local range, whatever
# --allow_private says, since a crawler fetching them hands out the machine's credentials.
METADATA = {ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254",
                                              "100.100.100.200", "168.63.129.16")}
NAT64 = ipaddress.ip_network("64:ff9b::/96")
DECODABLE = ("gzip", "x-gzip", "deflate")  # the content codings undone (with a bound on their output)
ACCEPT_ENCODING = "gzip, deflate"  # asked for; br and zstd are not (their decoders here have no output bound)
MAX_CODINGS = 4  # "gzip, gzip" exists in the wild (a proxy compressing again); a long stack is an attack
CHUNK = 64 * 1024


class Refused(Exception):
    """A connection the address policy forbids; str(e) is the reason."""


class BadBody(Exception):
    """A body that cannot be decoded within the limits; str(e) is the reason."""


def address_kind(address):
    """'link-local' (link-local ranges and cloud metadata services), 'private' (anything else not globally
    routable: loopback, RFC 1918, unique-local, shared, reserved) or 'public'."""
    if address.version == 6 and address.ipv4_mapped:  # ::ffff:169.254.169.254 is 169.254.169.254
        address = address.ipv4_mapped
    elif address.version == 6 and address in NAT64:
        address = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in METADATA or address.is_link_local:
        return "link-local"
    return "public" if address.is_global else "private"


def resolve(host, port=None):
    """getaddrinfo for TCP: [(ip address, sockaddr)]; raises OSError (socket.gaierror) when it does not resolve."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except UnicodeError as e:
        raise socket.gaierror(f"bad host name: {e}") from None
    return [(ipaddress.ip_address(info[4][0].split("%")[0]), info[4]) for info in infos]


def refusal(host, addresses, allow_private=False, allow_link_local=False, trusted_hosts=()):
    """Why the crawler must not connect to host at these addresses, or None. Hosts the user named (trusted) may be
    private; link-local and metadata addresses need allow_link_local even then (URL lists come from the web)."""
    kinds = {address_kind(a) for a in addresses}
    if "link-local" in kinds and not allow_link_local:
        return f"refused (link-local or cloud metadata address): {host} (--allow_link_local to allow)"
    if "private" in kinds and not allow_private and host.lower() not in trusted_hosts:
        return f"refused (private address): {host} (--allow_private to allow)"
    return None


class Deadline:
    """The end of the current download, per thread (each fetch runs in one thread); every socket wait is cut to it."""

    def __init__(self):
        self.local = threading.local()

    def set(self, when):
        self.local.when = when

    def cap(self, timeout, error):
        """timeout shortened to the time left, raising error (an httpcore timeout class) when none is left."""
        when = getattr(self.local, "when", None)
        if when is None:
            return timeout
        left = when - time.monotonic()
        if left <= 0:
            raise error("--max_time reached")
        return left if timeout is None else min(timeout, left)


class DeadlineStream(httpcore.NetworkStream):
    """A connection whose reads and writes never wait past the deadline: a server sending its headers one byte a
    second cannot hold a fetch longer than --max_time (read_timeout only bounds each wait)."""

    def __init__(self, stream, deadline):
        self.stream, self.deadline = stream, deadline

    def read(self, max_bytes, timeout=None):
        return self.stream.read(max_bytes, self.deadline.cap(timeout, httpcore.ReadTimeout))

    def write(self, buffer, timeout=None):
        self.stream.write(buffer, self.deadline.cap(timeout, httpcore.WriteTimeout))

    def close(self):
        self.stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        tls = self.stream.start_tls(ssl_context, server_hostname, self.deadline.cap(timeout, httpcore.ConnectTimeout))
        return DeadlineStream(tls, self.deadline)

    def get_extra_info(self, info):
        return self.stream.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """Resolves each host as it connects and refuses the connection when any address fails the policy: the
    check and the connection see the same addresses, so DNS rebinding cannot slip a private one in after the
    crawler's own check."""

    def __init__(self, deadline, **policy):
        self.deadline, self.policy, self.backend = deadline, policy, httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            resolved = resolve(host, port)
        except OSError as e:
            raise httpcore.ConnectError(f"cannot resolve {host}: {e}") from None
        reason = refusal(host, [a for a, _ in resolved], **self.policy)
        if reason:
            raise Refused(reason)
        error = httpcore.ConnectError(f"no address for {host}")
        for _, sockaddr in resolved:
            try:
                stream = self.backend.connect_tcp(sockaddr[0], sockaddr[1],
                                                  self.deadline.cap(timeout, httpcore.ConnectTimeout),
                                                  local_address, socket_options)
                return DeadlineStream(stream, self.deadline)
            except httpcore.ConnectError as e:
                error = e
        raise error

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise Refused("refused: unix sockets")

    def sleep(self, seconds):
        time.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport on a connection pool built with GuardedBackend (httpx offers no argument for a network
    backend, so the pool it made is replaced by the same pool with ours)."""

    def __init__(self, backend, limits):
        super().__init__(limits=limits)
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections, keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend)


def inflate(chunks, coding, limit):
    """Undo one gzip or deflate layer of a stream of chunks, yielding at most CHUNK bytes at a time: a 2 KB body
    that inflates to gigabytes never exists in memory, and past `limit` decoded bytes it stops."""
    raw_deflate_tried = coding != "deflate"
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS if coding in ("gzip", "x-gzip") else zlib.MAX_WBITS)
    total = 0
    for data in chunks:
        while not decoder.eof:
            try:
                out = decoder.decompress(data, CHUNK)
            except zlib.error as e:
                if not raw_deflate_tried and total == 0:  # "deflate" is sent both zlib-wrapped and raw
                    raw_deflate_tried, decoder = True, zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise BadBody(f"broken {coding} content coding: {e}") from None
            raw_deflate_tried = True
            data = decoder.unconsumed_tail
            total += len(out)
            if total > limit:
                raise BadBody(f"too large: over --max_bytes {limit} once decoded ({coding} content coding)")
            if out:
                yield out
            if not data and len(out) < CHUNK:  # this chunk is used up and no output is pending
                break
        if decoder.eof:
            return  # what follows the compressed stream is not read (as httpx does)
    raise BadBody(f"broken {coding} content coding: the stream is cut off")


def counted(chunks, limit):
    """The raw chunks, stopping past `limit` bytes received (a compressed stream can carry bytes that decode to
    nothing)."""
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise BadBody(f"too large: over --max_bytes {limit} received")
        yield chunk


def decoded(raw_chunks, content_encoding, limit):
    """The body's decoded chunks, every layer of Content-Encoding (a header value list) undone with its output
    bounded by `limit`; unknown codings and stacks deeper than MAX_CODINGS are refused."""
    codings = [c.strip().lower() for value in content_encoding for c in value.split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if len(codings) > MAX_CODINGS:
        raise BadBody(f"refused: {len(codings)} layers of Content-Encoding (at most {MAX_CODINGS})")
    for coding in codings:
        if coding not in DECODABLE:
            raise BadBody(f"unsupported Content-Encoding {coding[:40]!r}")
    chunks = counted(raw_chunks, limit)
    for coding in reversed(codings):  # the last one listed was applied last
        chunks = inflate(chunks, coding, limit)
    return chunks
