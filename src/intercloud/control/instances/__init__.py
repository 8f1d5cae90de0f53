"""The instance reconcile step (issue 10): one module per instance state.

``step.InstanceReconciler`` observes every asynchronous provider, applies what it saw
(``observe``), then runs the handler of each state (``requested``, ``allocated``,
``running``, ``draining``, ``terminating``). Every handler follows one recipe: load a
batch of rows, call the provider outside any store transaction, apply the result with a
guarded compare-and-set that writes an event. ``transitions`` holds the state machine
and the end causes. This package is imported by the store: keep this file empty of code.
"""
