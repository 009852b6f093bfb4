"""The life of one message — the two spines of dispatch (docs/architecture.md).

- :mod:`~dispatch.message.pipeline` — how a message is made: inputs → facts → decide → render →
  record → submit;
- :mod:`~dispatch.message.lifecycle` — how its state moves: ``Status``, ``TRANSITIONS`` and the one
  call that writes and announces each change;
- :mod:`~dispatch.message.delivery`, :mod:`~dispatch.message.runtime`,
  :mod:`~dispatch.message.journal`, :mod:`~dispatch.message.group_commit` — the workers' side;
- :mod:`~dispatch.message.aftersend`, :mod:`~dispatch.message.fallback` — after the send.
"""
