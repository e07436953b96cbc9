"""The course notes' example, run twice: with a module global, then with threading.local.

    python demo.py

With the global, both threads print the data of whichever thread wrote last;
with threading.local each prints its own. Nothing here is graded.
"""

import random
import threading
import time


class Plain:  # a plain object: one set of attributes, shared by all threads
    pass


def run(loc) -> None:
    def func1():
        print(f"  {threading.current_thread().name}: {loc.name} {loc.age}")

    def func2(name, age):
        loc.name = name
        loc.age = age
        time.sleep(random.uniform(0, 0.5))  # the other thread runs meanwhile
        func1()

    threads = [threading.Thread(target=func2, args=args, name=args[0])
               for args in (("明哥", 19), ("小弟", 17))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


if __name__ == "__main__":
    print("a module global (one object for everyone):")
    run(Plain())
    print("threading.local (one set of attributes per thread):")
    run(threading.local())
