"""LINE/1 server, model: socketserver.ThreadingTCPServer (thread per connection).

Blocks: each handler thread in rfile.readline() / wfile.write(); the main
thread in serve_forever(), which waits for new connections with a selector
(select or poll) and starts one thread per client. So "socketserver = IO
multiplexing + threads", as the notes say, but only accept() is multiplexed:
each client's IO is plain blocking IO in its own thread. The selector is not
there for scale: it lets serve_forever() wake every poll_interval (0.5 s) to
see whether shutdown() was called (and run service_actions(), where
ForkingMixIn reaps its children).
Scales: like thread_server.py: a thread per client, bounded only by the OS
(RLIMIT_NPROC, the container's pids limit, memory).
Needs: threads (Linux, macOS, Windows).
"""
import socketserver

from lineproto import MAX_LINE, NAME, address, log, reply, run


class LineHandler(socketserver.StreamRequestHandler):
    disable_nagle_algorithm = True      # TCP_NODELAY: each reply goes out at once

    def handle(self):
        try:
            while True:
                line = self.rfile.readline(MAX_LINE + 1)   # the limit counts the b"\n"
                if not line.endswith(b"\n"):
                    return      # EOF (a partial line gets no reply) or a line too long: close
                self.wfile.write(reply(line[:-1]))         # wfile: unbuffered, sendall()
        except OSError:         # ConnectionResetError, BrokenPipeError
            return


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True               # handler threads do not keep the process alive at exit
    allow_reuse_address = True          # SO_REUSEADDR
    request_queue_size = 1024           # listen() backlog


def main():
    with Server(address(), LineHandler) as server:
        host, port = server.server_address[:2]
        log(f"{NAME} listening on {host}:{port}")
        server.serve_forever()


if __name__ == "__main__":
    run(main)
