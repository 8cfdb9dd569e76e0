"""The command line: main (parser and dispatch) · one module per command (ask, ensembles, serve,
evaluate) · console (terminals, pipes, argument types) · render (how a run reads on a terminal)."""
