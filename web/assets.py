"""Serves the browser libraries (installed by npm) from our own server: a fixed whitelist, no CDN.

Only the names below are served; a request never chooses a path under node_modules.
"""

from pathlib import Path

from flask import Blueprint, abort, send_file

ROOT = Path(__file__).resolve().parent.parent
NODE_MODULES = ROOT / "node_modules"
VENDOR = {  # URL name -> file under node_modules
    "chart.umd.js": "chart.js/dist/chart.umd.js",
    "socket.io.esm.min.js": "socket.io-client/dist/socket.io.esm.min.js",
}

bp = Blueprint("assets", __name__)


@bp.get("/vendor/<name>")
def vendor(name):
    relative = VENDOR.get(name)
    if relative is None:
        abort(404)
    path = NODE_MODULES / relative
    if not path.is_file():
        abort(503, description=f"{relative} is missing; run scripts/setup (npm ci) to install it.")
    return send_file(path, mimetype="text/javascript", max_age=3600)
