"""Builtin feature plugins. Each talks only to the kernel and the sdk, never to another builtin."""
