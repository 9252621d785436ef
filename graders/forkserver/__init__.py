"""The fork server of a warm kernel pool: a program that runs inside the sandbox.

``python -m graders.forkserver`` imports the libraries a submission uses once, then forks
one IPython kernel per request (:mod:`graders.forkserver.server`); each child locks itself
down and becomes the kernel (:mod:`graders.forkserver.child`); both speak the format of
:mod:`graders.forkserver.wire`. The grader's side is :mod:`graders.warm`.

This package imports the standard library alone. It is copied into the pool's folder,
where the server finds it: kgrade's own package is not visible inside the sandbox.
"""
