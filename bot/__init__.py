"""The Slack side of remediator (the only package that imports ``slack_bolt``).

* ``bot.app.build_app(engine, settings)``: the bolt App (HTTP mode, Socket Mode);
* ``bot.endpoint``: Slack's HTTP endpoint (signature on the raw bytes, replay cache, shape check, bolt);
* ``bot.http``: the WSGI app and ``serve`` (waitress) for ``remediator serve``;
* ``bot.socket``: Socket Mode for local development (``remediator serve --socket``);
* ``bot.chat.SlackChat``: the engine's chat port (messages, updates, thread replies), paced;
* ``bot.directory.SlackDirectory``: user-group membership for approver checks, cached;
* ``bot.blocks``: Block Kit rendering, escaping and limits.

The engine these serve is composed in ``remediator.app.wiring`` (``build_slack_engine``): bot
converts between Slack and the core, and imports nothing of ``remediator.app``. Submodules are
imported on use, so ``import bot`` stays cheap.
"""
