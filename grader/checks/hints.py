"""What a failing check tells the student to try, in the terms of the exercise's
model (ctx.model): "use sendall" for a thread per connection, "keep the rest in
an output buffer and wait for writability" for select. Texts only; the checks
decide pass or fail.
"""

from __future__ import annotations

BLOCKING = ("iterative", "thread", "threadpool", "fork", "socketserver")
LOOPS = ("nonblocking", "select", "poll", "epoll", "epoll_et", "kqueue", "selectors")
MULTIPLEXING = ("select", "poll", "epoll", "epoll_et", "kqueue", "selectors", "asyncio",
                "asyncio_protocol")

# why a multiplexer's wait returns at once: writability asked for with nothing to send
WRITE_INTEREST = {
    "select": "select() returns at once while its write list holds a socket with nothing "
              "to send",
    "poll": "poll() returns at once while a socket with nothing to send is registered for "
            "POLLOUT",
    "epoll": "epoll.poll() returns at once while a socket with nothing to send is registered "
             "for EPOLLOUT",
    "kqueue": "kqueue.control() returns at once while a socket with nothing to send has a "
              "KQ_FILTER_WRITE event",
    "selectors": "sel.select() returns at once while a socket with nothing to send is "
                 "registered for EVENT_WRITE",
}
WRITE_INTEREST["epoll_et"] = WRITE_INTEREST["epoll"]


def partial_send(model: str) -> str:
    """line.large when the replies come back cut: send() took only part."""
    if model in BLOCKING:
        return ("send() may take only part of the reply: use sendall(), which loops until "
                "every byte is sent")
    if model == "asyncio":
        return "write the whole reply with writer.write() and then await writer.drain()"
    if model == "asyncio_protocol":
        return "transport.write() takes the whole reply (it buffers what the kernel did not)"
    return ("send() may take only part of the reply: keep the rest in a per-connection output "
            "buffer and send it when the socket is writable again")


def framing(what: str) -> str:
    """line.large when `what` (a reply's wrong length, a b'\\n' inside it) shows the server
    answered recv() chunks, not lines: the bug is on the input side, not in send()."""
    return (f"{what}: your server answered a recv() chunk, not a line. A 64 KiB line arrives "
            "in many chunks: keep an input buffer per connection and reply only once a whole "
            "line (up to b'\\n') is in it")


def never_closes(model: str) -> str:
    """robust.eof when the replies came but the connection stayed open."""
    if model in BLOCKING:
        return "when recv() returns b'' send what you still owe, then close the socket"
    if model == "asyncio":
        return ("when reader.readline() returns b'' (EOF), write what you still owe, "
                "await writer.drain(), then writer.close()")
    if model == "asyncio_protocol":
        return ("in eof_received() return False (or call transport.close()): the transport "
                "sends what it still buffers, then closes")
    return ("after recv() returned b'' stop reading that socket, and close it once its output "
            "buffer has been fully sent: check after each send, not only when the EOF came")


def concurrent(model: str) -> str:
    """robust.concurrent: some of many clients at once were not served."""
    if model in ("thread", "socketserver"):
        return "start a thread per accepted connection, so a slow client holds up only itself"
    if model == "threadpool":
        return ("every connected client holds a pool thread: a client past the pool waits, so "
                "the pool must be as large as the clients served at once")
    if model == "fork":
        return "fork a child per accepted connection and keep accepting in the parent"
    if model == "iterative":
        return "an iterative server serves one client to the end before the next (the lesson)"
    if model == "asyncio":
        return ("never block the event loop: await every read and write, and start a "
                "handler (a task) per connection")
    if model == "asyncio_protocol":
        return ("never block the event loop: data_received() must return at once; each "
                "connection gets its own Protocol instance (the factory makes one per client)")
    return ("serve every connection the wait call reports ready, not only the first, and "
            "never block on one of them")


def spinning(model: str) -> str:
    """resource.idle_cpu and model.conformance when a multiplexed server never sleeps."""
    if model in WRITE_INTEREST:
        return (f"{WRITE_INTEREST[model]} (a connected socket is writable whenever its send "
                "buffer has room), so the loop spins: ask for writability only while that "
                "socket's output buffer holds bytes, and never pass a timeout of 0")
    if model in ("asyncio", "asyncio_protocol"):
        return ("something keeps the event loop busy: a coroutine that loops without awaiting, "
                "or asyncio.sleep(0) in a loop")
    return ("busy polling burns a whole core (the course notes: non-blocking IO retried in a "
            "loop wastes the CPU): sleep in select()/poll()/epoll until a socket is ready "
            "instead of calling recv()/accept() again and again")


def stall(model: str) -> str:
    """robust.stall: replies to clients that asked at once came one after another."""
    if model in ("asyncio", "asyncio_protocol"):
        return ("something blocks the event loop (time.sleep, a blocking recv or file read, "
                "a synchronous library, a long CPU loop): every client waits for it. Await "
                "instead (await asyncio.sleep(...)), or run the blocking call in a thread: "
                "await loop.run_in_executor(None, blocking_call, ...)")
    return concurrent(model)


# how a multiplexed loop stops asking for reads on one socket
DROP_READ = {
    "select": "leave it out of select()'s read list",
    "poll": "poller.modify(fd, select.POLLOUT) while replies wait (poller.unregister(fd) "
            "once they are sent, then close)",
    "epoll": "ep.modify(fd, select.EPOLLOUT) while replies wait (ep.unregister(fd) once they "
             "are sent, then close)",
    "selectors": "sel.modify(sock, selectors.EVENT_WRITE, data) while replies wait "
                 "(sel.unregister(sock) once they are sent, then close)",
    "kqueue": "delete its KQ_FILTER_READ event (KQ_EV_DELETE)",
}
DROP_READ["epoll_et"] = DROP_READ["epoll"]


def half_close_spin(model: str) -> str:
    """resource.halfclose_cpu: a half-closed socket kept in the read interest."""
    if model in DROP_READ:
        return ("after recv() returned b'' the socket stays readable forever (every recv() "
                "returns b'' at once), so a level-triggered wait that still asks for reads on "
                f"it returns at once and the loop spins: drop the read interest at EOF: "
                f"{DROP_READ[model]}")
    if model == "asyncio":
        return "after EOF stop reading: write what you owe, await writer.drain(), then close"
    return ("after recv() returned b'' do not call recv() on that socket again: send what you "
            "owe, then close it")


def select_limit(os_name: str) -> str:
    """robust.refuse_past_fd_setsize: a select() server that died past FD_SETSIZE."""
    if os_name == "windows":
        return ("select() there takes at most 512 sockets: count your connections and close a "
                "new client (accept() it, then close()) when you already watch 511")
    return ("select.select() raises ValueError (\"filedescriptor out of range in select()\") "
            "for an fd of 1024 or more, and uncaught it ends your server with every client: "
            "after accept(), close a connection whose fileno() is 1024 or more (or stop "
            "watching the listener while you are full) and keep serving the others")
