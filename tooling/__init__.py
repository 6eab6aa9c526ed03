"""The deployment tooling of ai-social-media, in layers that import downwards only:

    cli       the subcommands of deploy.py (thin)
    deploy    stack states, change sets, check, apply, adopt, destroy, ledger
    render    environments, names, graph, templates, samconfig   (no AWS SDK)
    aws       every AWS and sam call, the local emulator
    errors, paths                                                  (the base)

render and aws do not import each other; tests/test_layers.py enforces the order."""
