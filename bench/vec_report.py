#!/usr/bin/env python3
"""Which loops of the kernels GCC did not vectorise, for each target ISA.

    python3 bench/vec_report.py [BUILD_DIR] [--march native,x86-64-v3,x86-64] [--dirs src/tensor,src/optim]

Compiles each source of the given folders again with the build's own command line (from meson's
compile_commands.json), once per -march, adding -fopt-info-vec-missed, and lists per file the loops
that stayed scalar ("control flow in loop" is the usual reason: a select GCC could not if-convert) or
that run scalar when their pointers overlap ("versioned ... possible aliasing"). A loop vectorised on
one target and not on another is what to look at; tile stores and scalar remainders are expected.
"""
import argparse, json, os, re, shlex, subprocess, sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("build", nargs="?", default="build")
    ap.add_argument("--march", default="native,x86-64-v3,x86-64")
    ap.add_argument("--dirs", default="src/tensor,src/autograd,src/optim")
    a = ap.parse_args()
    try:
        cmds = json.load(open(os.path.join(a.build, "compile_commands.json")))
    except OSError as e:
        sys.exit(f"vec_report: {e} (configure the build first: meson setup {a.build})")
    dirs = [d.strip("/") + "/" for d in a.dirs.split(",")]
    pat = re.compile(r"^(\S+?):(\d+):\d+: (missed: not vectorized: control flow in loop|optimized:  loop versioned for vectorization because of possible aliasing)")
    for march in a.march.split(","):
        print(f"== -march={march}")
        for c in cmds:
            full = os.path.normpath(os.path.join(c["directory"], c["file"]))
            rel = next((full[full.rindex("/" + d) + 1:] for d in dirs if "/" + d in full), None)
            if not rel:
                continue
            words = shlex.split(c["command"])
            if "-o" in words:
                i = words.index("-o")
                del words[i:i + 2]
            args = [x for x in words if not x.startswith("-march=") and not x.startswith("-fdiagnostics-color")]
            args += [f"-march={march}", "-fdiagnostics-color=never", "-fopt-info-vec-all", "-o", os.devnull]
            r = subprocess.run(args, cwd=c["directory"], capture_output=True, text=True)
            found = sorted({(int(m.group(2)), "scalar: control flow" if "control" in m.group(3) else "scalar if pointers overlap")
                            for line in r.stderr.splitlines() if (m := pat.match(line))})
            if found:
                print(f"  {rel}: " + ", ".join(f"{ln} ({why})" for ln, why in found))
    return 0


if __name__ == "__main__":
    sys.exit(main())
