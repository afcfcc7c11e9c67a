"""Calls a MessagePack-RPC server at host port with pynvim's msgpack-rpc
session, as a pynvim user would (its first message is nvim_set_client_info
with the method name as bin). Prints one JSON object with what came back."""
import json
import sys

from pynvim.api.common import NvimError, decode_if_bytes
from pynvim.msgpack_rpc import tcp_session

host, port = sys.argv[1], int(sys.argv[2])
session = tcp_session(host, port)
# As pynvim's Nvim object does: an error is read as [type, message].
session.error_wrapper = lambda e: NvimError(decode_if_bytes(e[1]))
out = {}
out["echo_big"] = session.request("echo", 2**64 - 1) == 2**64 - 1
out["echo_neg"] = session.request("echo", -2**63) == -2**63
value = session.request("echo", 1.0)
out["echo_float"] = isinstance(value, float) and value == 1.0
out["echo_bytes"] = session.request("echo", b"\x00\xff") == b"\x00\xff"
try:
    session.request("fail", "boom from pynvim")
    out["error"] = None
except Exception as err:  # pynvim raises NvimError with the error's message
    out["error"] = str(err)
session.close()
print(json.dumps(out))
