"""A byte-bounded LRU cache shared by one engine (row groups, key lists, open files)."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Callable, Hashable


class LRUCache:
    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._data: OrderedDict[Hashable, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> Any:
        with self._lock:
            item = self._data.get(key)
            if item is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return item[0]

    def put(self, key: Hashable, value: Any, nbytes: int) -> None:
        if nbytes > self.max_bytes // 2:
            return
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._data[key] = (value, nbytes)
            self._bytes += nbytes
            while self._bytes > self.max_bytes and self._data:
                _k, (_v, n) = self._data.popitem(last=False)
                self._bytes -= n

    def get_or_load(self, key: Hashable, load: Callable[[], tuple[Any, int]]) -> Any:
        v = self.get(key)
        if v is None:
            v, n = load()
            self.put(key, v, n)
        return v

    def discard_prefix(self, pred: Callable[[Hashable], bool]) -> None:
        with self._lock:
            for k in [k for k in self._data if pred(k)]:
                self._bytes -= self._data.pop(k)[1]

    @property
    def nbytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._data)
