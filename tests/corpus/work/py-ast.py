# The py-ast workload: CPython holding the parsed syntax trees, source lines
# and symbol tables of generated Python modules (a pointer-heavy heap of
# small objects).  Prints "ready" once built, then keeps walking the trees.
# Everything comes from a seeded PRNG: the pages hold no third-party text.
# SPDX-License-Identifier: MIT
import ast
import keyword
import random
import sys

rng = random.Random(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
SYL = ["".join(rng.choice("bcdfghklmnprstvz") + rng.choice("aeiou") +
               rng.choice(["", "n", "r", "s", "l"])) for _ in range(300)]


def name():
    n = "_".join("".join(rng.choice(SYL) for _ in range(rng.randint(1, 3)))
             for _ in range(rng.randint(1, 2)))
    return n + "_" if keyword.iskeyword(n) else n


def expr(depth=0):
    r = rng.random()
    if depth > 3 or r < 0.3:
        return rng.choice([name(), str(rng.randint(0, 1000)),
                           repr(rng.random())[:8],
                           repr(" ".join(rng.choice(SYL)
                                         for _ in range(rng.randint(1, 6))))])
    if r < 0.6:
        return (f"({expr(depth + 1)} {rng.choice('+-*/%&|')} "
                f"{expr(depth + 1)})")
    if r < 0.75:
        return f"{name()}({', '.join(expr(depth + 1) for _ in range(rng.randint(0, 3)))})"
    if r < 0.85:
        return f"[{', '.join(expr(depth + 1) for _ in range(rng.randint(0, 4)))}]"
    return ("{" + ", ".join(f"{repr(name())}: {expr(depth + 1)}"
                            for _ in range(rng.randint(0, 3))) + "}")


def block(ind, depth=0):
    out = []
    for _ in range(rng.randint(1, 5)):
        r = rng.random()
        if depth < 2 and r < 0.15:
            out.append(f"{ind}if {expr()} {rng.choice(['<', '==', '>='])} {expr()}:")
            out += block(ind + "    ", depth + 1)
        elif depth < 2 and r < 0.25:
            out.append(f"{ind}for {name()} in {name()}({expr()}):")
            out += block(ind + "    ", depth + 1)
        elif r < 0.35:
            out.append(f"{ind}return {expr()}")
            break
        else:
            out.append(f"{ind}{name()} = {expr()}")
    return out


def module():
    lines = [f'"""{" ".join(rng.choice(SYL) for _ in range(12))}."""',
             f"import {name()}"]
    for _ in range(rng.randint(3, 12)):
        if rng.random() < 0.3:
            lines.append(f"class {name().title().replace('_', '')}:")
            for _ in range(rng.randint(1, 4)):
                lines.append(f"    def {name()}(self, {name()}, {name()}={expr()}):")
                lines += block("        ")
        else:
            args = ", ".join(name() for _ in range(rng.randint(0, 4)))
            lines.append(f"def {name()}({args}):")
            lines += block("    ")
    return "\n".join(lines) + "\n"


modules = {}
symbols = {}
target = int(sys.argv[2]) if len(sys.argv) > 2 else 4000
for i in range(target):
    while True:
        src = module()
        try:
            tree = ast.parse(src, f"m{i}.py")
            code = compile(tree, f"m{i}.py", "exec")
            break
        except SyntaxError:  # a repeated argument name
            continue
    mname = name() + str(i)
    modules[mname] = (tree, src.splitlines(), code if i % 4 == 0 else None)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            symbols.setdefault(node.id, []).append((mname, node.lineno))
print("ready", len(modules), len(symbols), flush=True)
while True:
    n = 0
    for tree, _, _ in modules.values():
        n += sum(1 for _ in ast.walk(tree))
