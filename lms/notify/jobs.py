from lms.notify.service import deliver_outbox

PERIODIC = [(deliver_outbox, 60)]
