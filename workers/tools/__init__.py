"""Agent tools on the respond worker: the SSRF-guarded HTTP request (``net``),
the built-ins (``builtins``), the spoken lines (``speech``) and the runner that
makes each call safe to retry (``runner``). docs/tools.md describes them."""
