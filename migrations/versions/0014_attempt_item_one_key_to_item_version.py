"""attempt_item: one foreign key to item_version (id, item_id) instead of one to item and one to item_version

PostgreSQL checks a foreign key by locking the referenced row (FOR KEY SHARE). Every attempt's
items reference rows of the same bank, so during an exam-start storm each start locked 40
rows that every concurrent start also locked (multixacts). The pair key locks 20 and says
more: the version shown belongs to the item recorded (item_version references item).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 16:01:41.620720

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade():
    # the key's target first: a foreign key needs a unique constraint on the referenced columns
    with op.batch_alter_table('item_version', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_item_version_id_item', ['id', 'item_id'])

    with op.batch_alter_table('attempt_item', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_attempt_item_item_version_id_item_version'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_attempt_item_item_id_item'), type_='foreignkey')
        batch_op.create_foreign_key('fk_attempt_item_version_item', 'item_version',
                                    ['item_version_id', 'item_id'], ['id', 'item_id'])


def downgrade():
    with op.batch_alter_table('attempt_item', schema=None) as batch_op:
        batch_op.drop_constraint('fk_attempt_item_version_item', type_='foreignkey')
        batch_op.create_foreign_key(batch_op.f('fk_attempt_item_item_id_item'), 'item', ['item_id'], ['id'])
        batch_op.create_foreign_key(batch_op.f('fk_attempt_item_item_version_id_item_version'), 'item_version',
                                    ['item_version_id'], ['id'])

    with op.batch_alter_table('item_version', schema=None) as batch_op:
        batch_op.drop_constraint('uq_item_version_id_item', type_='unique')
