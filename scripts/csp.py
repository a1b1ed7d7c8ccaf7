#!/usr/bin/env python3
"""Trunk post-build hook: pins the inline scripts Trunk wrote into index.html (the wasm loader)
in the page's Content-Security-Policy by their SHA-256, so the policy can forbid every other
inline script. The policy itself is the <meta> in index.html; this fills its
'inline-script-hashes' placeholder. Works for any static server: nothing depends on headers."""
import base64, hashlib, os, re, sys

path = os.path.join(os.environ.get("TRUNK_STAGING_DIR", sys.argv[1] if len(sys.argv) > 1 else "dist"), "index.html")
html = open(path, encoding="utf-8").read()
scripts = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", html, re.S)
hashes = " ".join("'sha256-%s'" % base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() for s in scripts if s.strip())
if "'inline-script-hashes'" not in html:
    sys.exit(f"csp.py: no 'inline-script-hashes' placeholder in {path}")
open(path, "w", encoding="utf-8").write(html.replace("'inline-script-hashes'", hashes))
print(f"csp.py: {len(scripts)} inline script(s) pinned in {path}")
