"""The collector commands: show, diff, matrix, check, validate (and their JUnit output).

Every file they read goes through probe.report.load, the one loader for untrusted input.
"""
