"""Decks with hooks: how a recorder runs an unmodified LAMMPS deck and still learns where
each ``run``/``minimize`` starts and ends.

LAMMPS has no per-command hook, and a deck may loop with ``label``/``jump``, so the deck is
not split into pieces: LAMMPS itself reads a copy of it in which every top-level
``run``/``minimize`` (and box-creating, ``clear``, ``replicate``, ``reset_timestep``)
command is wrapped in three-line hooks::

    variable __adv_hook string B12
    jump /tmp/.../empty.in            # LAMMPS reads an empty file: lmp.file() returns
    label __adv_B12
    run 1000

At a hook ``lmp.file`` returns to Python, which does what the hook asks (install the fix,
mark a new stage, flush the file) and resumes LAMMPS with a one-line file
``jump COPY __adv_B12`` (LAMMPS skips to that label). Variables, loops and ``jump SELF``
keep working because LAMMPS still does all the parsing; ``jump SELF`` refers to the copy,
and a ``jump`` to the deck's own file name is rewritten to ``jump SELF``. Limits: commands
inside ``include``d files or inside ``if ... then "run ..."`` are not wrapped (they are
still recorded; stages are then detected from the callback), and no hook is placed between
a ``next`` and the following ``jump`` (a hook's ``jump`` would consume the skip that
``next`` arms at the end of a loop).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

HOOK_VAR = "__adv_hook"
BOX_COMMANDS = ("read_data", "create_box", "read_restart")
RUN_COMMANDS = ("run", "minimize")
# commands that refuse the recording fix (replicate changes the atoms, reset_timestep
# refuses a time-dependent fix ave/time): the fix is removed before and installed after
REINSTALL = ("replicate", "reset_timestep")
HOOKED_BEFORE = RUN_COMMANDS + REINSTALL
HOOKED_AFTER = HOOKED_BEFORE + BOX_COMMANDS + ("clear",)


def _strip_comment(line: str) -> str:
    quote = None
    i = 0
    while i < len(line):
        ch = line[i]
        if quote:
            if line.startswith(quote, i):
                i += len(quote)
                quote = None
                continue
        elif line.startswith('"""', i):
            quote = '"""'
            i += 3
            continue
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            return line[:i]
        i += 1
    return line


def logical_commands(text: str):
    """Split deck text into LAMMPS commands: yields (first_line, last_line, words).

    Joins '&' continuation lines, keeps triple-quoted blocks together, drops comments.
    """
    lines = text.splitlines()
    i, n = 0, len(lines)
    while i < n:
        start = i
        parts = []
        triple = False
        while i < n:
            line = lines[i]
            i += 1
            if line.count('"""') % 2 == 1:
                triple = not triple
            if triple:
                parts.append(line)
                continue
            code = _strip_comment(line).rstrip()
            if code.endswith("&"):
                parts.append(code[:-1])
                continue
            parts.append(code)
            break
        yield start, i - 1, " ".join(parts).split()


def prepare_deck(text: str, deck_path, copy_path, empty_path):
    """Insert the hooks (see the module docstring). Returns (new_text, {hook: (word, cmd)})."""
    lines = text.splitlines()
    deck_path = Path(deck_path).resolve() if deck_path else None
    out, hooks = [], {}
    next_pending = False
    k = 0

    def hook(name):
        return [f"variable {HOOK_VAR} string {name}", f"jump {empty_path}", f"label __adv_{name}"]

    for first, last, words in logical_commands(text):
        block = lines[first:last + 1]
        word = words[0] if words else ""
        cmd = " ".join(words)
        if word == "jump" and len(words) >= 2 and deck_path is not None and words[1] != "SELF":
            try:
                if Path(words[1]).resolve() == deck_path:
                    block = [" ".join(["jump", "SELF"] + words[2:])]
            except OSError:
                pass
        if word == "next":
            next_pending = True
        elif word == "jump":
            next_pending = False
        wrap_before = word in HOOKED_BEFORE and not next_pending
        wrap_after = word in HOOKED_AFTER and not next_pending
        if wrap_before:
            k += 1
            hooks[f"B{k}"] = (word, cmd)
            out += hook(f"B{k}")
        out += block
        if wrap_after:
            k += 1
            hooks[f"A{k}"] = (word, cmd)
            out += hook(f"A{k}")
    return "\n".join(out) + "\n", hooks


def run_command(lmp, cmd, on_hook, call) -> None:
    """One command given from Python, with the hooks a deck copy would have around it."""
    word = (cmd.split() or [""])[0]
    if word in HOOKED_BEFORE:
        on_hook(word, cmd, True)
    call(lambda: lmp.command(cmd), cmd)
    if word in HOOKED_AFTER:
        on_hook(word, cmd, False)


def run_with_hooks(lmp, deck, text, on_hook, call, comm) -> None:
    """Run ``deck`` (its ``text`` as read on rank 0) in ``lmp`` through a hooked copy.

    on_hook(word, command, before) is called at every hook (collectively); call(fn, what)
    runs one LAMMPS call (the recorder turns its errors into one message). The temporary
    folder of the copy is removed whatever happens (exceptions, signals turned into them).
    """
    deck = Path(deck)
    root = comm.Get_rank() == 0
    tmp = tempfile.mkdtemp(prefix="lammps-adv-") if root else None
    if comm.Get_size() > 1:
        text, tmp = comm.bcast((text, tmp), root=0)
    tmp = Path(tmp)
    copy, empty = tmp / deck.name, tmp / "empty.in"
    new, hooks = prepare_deck(text, deck, copy, empty)
    try:
        if root:
            copy.write_text(new)
            empty.write_text("")
            for h in hooks:
                (tmp / f"resume_{h}.in").write_text(f"jump {copy} __adv_{h}\n")
        if comm.Get_size() > 1:
            comm.Barrier()
        lmp.command(f"variable {HOOK_VAR} string none")
        call(lambda: lmp.file(str(copy)), f"deck {deck}")
        while True:
            h = lmp.extract_variable(HOOK_VAR)
            if h in (None, "none"):
                break
            lmp.command(f"variable {HOOK_VAR} string none")
            word, cmd = hooks[h]
            on_hook(word, cmd, h.startswith("B"))
            call(lambda: lmp.file(str(tmp / f"resume_{h}.in")),
                 f"{deck.name}, from {cmd!r} on" if h.startswith("A") else cmd)
    finally:
        if root:
            shutil.rmtree(tmp, ignore_errors=True)
