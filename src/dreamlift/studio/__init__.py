"""The studio (``text3d serve``): a local web page that queues text3d and text2video jobs, shows each one forming
(step, time left, loss, its newest render), then its mesh in a viewer, its turntable, its files and its report.

The queue is a batch folder run by the local batch backend's workers (:mod:`dreamlift.batch`), so the studio's
jobs are resumable batch jobs, and the queue, a manifest on disk, outlives the server. :mod:`.serve` starts it;
:mod:`.server` answers the page; :mod:`.studio` runs the queue.
"""
