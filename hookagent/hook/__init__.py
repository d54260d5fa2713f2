"""The hooks' Python side. The installed hook is a sh script (resources/hook-tmpl) that records
commits into the spool's inbox itself; it calls in here only for the hooks that decide at hook
time (post-receive, once per push; svn's post-revprop-change, for an edited log message) and for
hooks installed by older versions, which ran `hookagent hook post-commit`.

    run.py    `hookagent hook NAME -- ARGS`: dispatch, one line on stderr for any problem, exit 0
    git.py    post-receive (what a push made new, via push.py) and the old post-commit path
    push.py   ref updates, watched refs and the processed-refs snapshot
    svn.py    post-revprop-change (svn:log edits) and the old svn post-commit path
"""
