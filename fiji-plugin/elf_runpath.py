#!/usr/bin/env python3
"""Reads or replaces the run path (DT_RUNPATH / DT_RPATH) of a 64-bit little-endian ELF file in place.

    elf_runpath.py FILE               prints the run path ("" when there is none) and its kind
    elf_runpath.py FILE NEW           replaces it with NEW, which must not be longer than the old one
    elf_runpath.py FILE --rpath NEW   the same, and makes it a DT_RPATH, which the loader searches
                                      before LD_LIBRARY_PATH (a DT_RUNPATH is searched after it)

fiji-plugin/build.sh uses it on the copy of libdeepcad.so it ships: cargo links the library with
"$ORIGIN:<absolute path of the build machine's libtorch>", and the shipped copy must find libtorch
only in its own private folder ("$ORIGIN/deepcad"), never on a path that happens to exist on the
machine that built it, nor in a folder on LD_LIBRARY_PATH (the old ImageJ launcher put Fiji.app/lib/linux64
there, where another update site may have installed a different libtorch_cpu.so). Like chrpath -r, the new string is written over the old one in the dynamic
string table and padded with NUL bytes; nothing moves, so the file stays valid. Refused (exit 1)
when another dynamic string (a symbol, version or library name) ends inside the old run path,
since the linker may share string tails. Only the Python standard library is needed.
"""
import mmap
import struct
import sys

PT_LOAD, PT_DYNAMIC = 1, 2
DT_NULL, DT_NEEDED, DT_STRTAB, DT_SONAME, DT_RPATH, DT_RUNPATH = 0, 1, 5, 14, 15, 29
SHT_DYNSYM, SHT_GNU_VERDEF, SHT_GNU_VERNEED = 11, 0x6FFFFFFD, 0x6FFFFFFE


def fail(message):
    print(f"elf_runpath.py: {message}", file=sys.stderr)
    sys.exit(1)


class Elf:
    def __init__(self, data):
        if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
            fail("not a 64-bit little-endian ELF file")
        self.data = data
        (self.phoff, self.shoff) = struct.unpack_from("<QQ", data, 0x20)
        (self.phentsize, self.phnum, self.shentsize, self.shnum) = struct.unpack_from("<HHHH", data, 0x36)
        self.segments = [
            struct.unpack_from("<IIQQQQQQ", data, self.phoff + i * self.phentsize) for i in range(self.phnum)
        ]
        self.sections = [
            struct.unpack_from("<IIQQQQIIQQ", data, self.shoff + i * self.shentsize) for i in range(self.shnum)
        ]

    def offset_of(self, vaddr):
        for p_type, _, p_offset, p_vaddr, _, p_filesz, _, _ in self.segments:
            if p_type == PT_LOAD and p_vaddr <= vaddr < p_vaddr + p_filesz:
                return vaddr - p_vaddr + p_offset
        fail(f"address {vaddr:#x} is in no loaded segment")

    def dynamic(self):
        """(offset of each entry, tag, value) of the dynamic section."""
        for p_type, _, p_offset, _, _, p_filesz, _, _ in self.segments:
            if p_type == PT_DYNAMIC:
                entries = []
                for at in range(p_offset, p_offset + p_filesz, 16):
                    tag, value = struct.unpack_from("<qQ", self.data, at)
                    if tag == DT_NULL:
                        break
                    entries.append((at, tag, value))
                return entries
        fail("no dynamic section (a static executable?)")

    def string(self, offset):
        end = self.data.find(b"\0", offset)
        return bytes(self.data[offset:end])

    def referenced_strings(self, strtab_offset):
        """Offsets (relative to the string table) of every name the dynamic linker reads."""
        refs = set()
        for _, tag, value in self.dynamic():
            if tag in (DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH):
                refs.add(value)
        for _, sh_type, _, _, sh_offset, sh_size, _, sh_info, _, sh_entsize in self.sections:
            if sh_type == SHT_DYNSYM and self.sections and sh_offset:
                for at in range(sh_offset, sh_offset + sh_size, sh_entsize or 24):
                    refs.add(struct.unpack_from("<I", self.data, at)[0])
            elif sh_type == SHT_GNU_VERNEED:
                at = sh_offset
                for _ in range(sh_info):
                    _, cnt, file_, aux, nxt = struct.unpack_from("<HHIII", self.data, at)
                    refs.add(file_)
                    a = at + aux
                    for _ in range(cnt):
                        _, _, _, name, anext = struct.unpack_from("<IHHII", self.data, a)
                        refs.add(name)
                        a += anext
                    at += nxt
            elif sh_type == SHT_GNU_VERDEF:
                at = sh_offset
                for _ in range(sh_info):
                    _, _, _, cnt, _, aux, nxt = struct.unpack_from("<HHHHIII", self.data, at)
                    a = at + aux
                    for _ in range(cnt):
                        name, anext = struct.unpack_from("<II", self.data, a)
                        refs.add(name)
                        a += anext
                    at += nxt
        return refs


def main(argv):
    as_rpath = "--rpath" in argv
    argv = [a for a in argv if a != "--rpath"]
    if len(argv) not in (2, 3) or (as_rpath and len(argv) != 3):
        fail("usage: elf_runpath.py FILE [[--rpath] NEW_RUNPATH]")
    path = argv[1]
    with open(path, "r+b" if len(argv) == 3 else "rb") as handle:
        access = mmap.ACCESS_WRITE if len(argv) == 3 else mmap.ACCESS_READ
        data = mmap.mmap(handle.fileno(), 0, access=access)
        elf = Elf(data)
        entries = elf.dynamic()
        strtab = next((value for _, tag, value in entries if tag == DT_STRTAB), None)
        if strtab is None:
            fail("no dynamic string table")
        strtab_offset = elf.offset_of(strtab)
        paths = [(at, tag, value) for at, tag, value in entries if tag in (DT_RPATH, DT_RUNPATH)]
        if len(argv) == 2:
            for _, tag, value in paths:
                kind = "RPATH" if tag == DT_RPATH else "RUNPATH"
                print(f"{kind} {elf.string(strtab_offset + value).decode()}")
            return
        if len(paths) != 1:
            fail(f"{path} has {len(paths)} run path entries; exactly one can be replaced")
        entry_at, _, value = paths[0]
        old = elf.string(strtab_offset + value)
        new = argv[2].encode()
        if len(new) > len(old):
            fail(f"the new run path ({len(new)} bytes) is longer than the old one ({len(old)} bytes)")
        shared = [r for r in elf.referenced_strings(strtab_offset) if value < r <= value + len(old)]
        if shared:
            fail(f"another dynamic string shares the tail of the run path '{old.decode()}'; not changed")
        start = strtab_offset + value
        data[start : start + len(old)] = new + b"\0" * (len(old) - len(new))
        if as_rpath:
            data[entry_at : entry_at + 8] = struct.pack("<q", DT_RPATH)
        data.flush()
        data.close()


if __name__ == "__main__":
    main(sys.argv)
