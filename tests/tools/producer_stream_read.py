#!/usr/bin/python3
"""producer_stream_read: reads a RabbitMQ stream from its first message over
AMQP 0-9-1 and prints one line per message: ROUTING_KEY<TAB>MESSAGE_ID<TAB>BODY.
Reading a stream does not consume it. Used by the producer tests to read back
what payq-producer published to payq.audit (manifests included). Standard
library only: python3-pika is not among the packages scripts/setup installs.

usage: producer_stream_read.py AMQP_URL [--queue payq.audit] [--idle-ms 3000]
                               [--expect N]
       producer_stream_read.py AMQP_URL --depth QUEUE
Stops after --expect messages, or when none arrived for --idle-ms. --depth
prints a queue's ready-message count from a passive queue.declare, which is
live (rabbitmqctl and the management API report quorum queue depths from
statistics that lag by seconds). Exit 0, or 1 on a protocol or connection
error."""
import argparse
import socket
import struct
import sys
import urllib.parse

FRAME_METHOD, FRAME_HEADER, FRAME_BODY, FRAME_HEARTBEAT = 1, 2, 3, 8
FRAME_END = b'\xce'


def shortstr(s):
    b = s.encode()
    return struct.pack('B', len(b)) + b


def longstr(b):
    return struct.pack('>I', len(b)) + b


class Conn:
    def __init__(self, host, port, timeout):
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.settimeout(timeout)
        self.buf = b''
        self.pos = 0

    def _read(self, n):
        # An offset into the buffer instead of slicing it on every read: a
        # 100,000-message stream would otherwise copy megabytes per frame.
        while len(self.buf) - self.pos < n:
            chunk = self.sock.recv(262144)
            if not chunk:
                raise ConnectionError('connection closed by the broker')
            self.buf = self.buf[self.pos:] + chunk
            self.pos = 0
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def frame(self):
        ftype, channel, size = struct.unpack('>BHI', self._read(7))
        payload = self._read(size)
        if self._read(1) != FRAME_END:
            raise ValueError('bad frame end')
        return ftype, channel, payload

    def send_method(self, channel, cls, meth, args=b''):
        payload = struct.pack('>HH', cls, meth) + args
        self.sock.sendall(struct.pack('>BHI', FRAME_METHOD, channel, len(payload)) + payload
                          + FRAME_END)

    def expect(self, cls, meth):
        while True:
            ftype, _, payload = self.frame()
            if ftype == FRAME_HEARTBEAT:
                continue
            got = struct.unpack('>HH', payload[:4])
            if got == (cls, meth):
                return payload[4:]
            if got in ((10, 50), (20, 40)):
                code, = struct.unpack('>H', payload[4:6])
                text = payload[7:7 + payload[6]].decode(errors='replace')
                raise ConnectionError('closed by the broker: %d %s' % (code, text))


def open_channel(url, timeout):
    u = urllib.parse.urlparse(url)
    vhost = urllib.parse.unquote(u.path[1:]) if len(u.path) > 1 else '/'
    c = Conn(u.hostname, u.port or 5672, timeout)
    c.sock.sendall(b'AMQP\x00\x00\x09\x01')
    c.expect(10, 10)  # connection.start
    creds = b'\x00' + urllib.parse.unquote(u.username or 'guest').encode() + b'\x00' + \
        urllib.parse.unquote(u.password or 'guest').encode()
    c.send_method(0, 10, 11, longstr(b'') + shortstr('PLAIN') + longstr(creds) +
                  shortstr('en_US'))
    tune = c.expect(10, 30)
    channel_max, frame_max, _ = struct.unpack('>HIH', tune[:8])
    c.send_method(0, 10, 31, struct.pack('>HIH', channel_max, frame_max, 0))  # no heartbeats
    c.send_method(0, 10, 40, shortstr(vhost) + shortstr('') + b'\x00')
    c.expect(10, 41)
    c.send_method(1, 20, 10, shortstr(''))
    c.expect(20, 11)
    return c


def skip_table(b, i):
    n, = struct.unpack('>I', b[i:i + 4])
    return i + 4 + n


def message_id(header):
    """The message_id property of a content header payload ('' if absent)."""
    flags, = struct.unpack('>H', header[12:14])
    i = 14
    for bit in range(15, 6, -1):  # content-type .. message-id, in wire order
        if not flags & (1 << bit):
            continue
        if bit in (15, 14, 10, 9, 8, 7):  # shortstr properties
            n = header[i]
            if bit == 7:
                return header[i + 1:i + 1 + n].decode(errors='replace')
            i += 1 + n
        elif bit == 13:
            i = skip_table(header, i)
        else:  # delivery-mode, priority: one octet
            i += 1
    return ''


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('url')
    ap.add_argument('--queue', default='payq.audit')
    ap.add_argument('--idle-ms', type=int, default=3000)
    ap.add_argument('--expect', type=int, default=0)
    ap.add_argument('--depth')
    a = ap.parse_args()
    c = open_channel(a.url, a.idle_ms / 1000.0)
    if a.depth:
        c.send_method(1, 50, 10, struct.pack('>H', 0) + shortstr(a.depth) + b'\x01' + longstr(b''))
        ok = c.expect(50, 11)
        count, = struct.unpack('>I', ok[1 + ok[0]:5 + ok[0]])
        print(count)
        return 0
    c.send_method(1, 60, 10, struct.pack('>IHB', 0, 1000, 0))  # basic.qos: acks are credit
    c.expect(60, 11)
    args = shortstr('x-stream-offset') + b'S' + longstr(b'first')
    c.send_method(1, 60, 20, struct.pack('>H', 0) + shortstr(a.queue) + shortstr('') + b'\x00' +
                  longstr(args))
    c.expect(60, 21)
    out = sys.stdout
    seen = 0
    try:
        while not a.expect or seen < a.expect:
            args = c.expect(60, 60)  # basic.deliver
            i = 1 + args[0]
            tag, = struct.unpack('>Q', args[i:i + 8])
            i += 9
            i += 1 + args[i]  # exchange
            rk = args[i + 1:i + 1 + args[i]].decode(errors='replace')
            ftype, _, header = c.frame()
            size, = struct.unpack('>Q', header[4:12])
            body = b''
            while len(body) < size:
                ftype, _, chunk = c.frame()
                body += chunk
            out.write('%s\t%s\t%s\n' % (rk, message_id(header), body.decode(errors='replace')))
            seen += 1
            if seen % 200 == 0:  # acks are the stream's credit: one per 200
                c.send_method(1, 60, 80, struct.pack('>QB', tag, 1))
    except socket.timeout:
        pass
    out.flush()
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main())
    except (OSError, ValueError, ConnectionError) as e:
        print('producer_stream_read: %s' % e, file=sys.stderr)
        sys.exit(1)
