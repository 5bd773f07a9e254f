"""Transfer batches and their items."""

import django.db.models.deletion
import django.db.models.expressions
import uuid
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('transactions', '0002_seed_currencies'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='TransferBatch',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('atomic', models.BooleanField(default=False)),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('processing', 'Processing'), ('completed', 'Completed'), ('failed', 'Failed')], default='pending', max_length=16)),
                ('total', models.PositiveIntegerField()),
                ('processed', models.PositiveIntegerField(default=0)),
                ('succeeded', models.PositiveIntegerField(default=0)),
                ('failed', models.PositiveIntegerField(default=0)),
                ('created_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField()),
                ('completed_at', models.DateTimeField(blank=True, null=True)),
                ('owner', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name_plural': 'transfer batches',
                'db_table': 'transfer_batches',
                'ordering': ('-created_at', '-id'),
            },
        ),
        migrations.CreateModel(
            name='TransferBatchItem',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('index', models.PositiveIntegerField()),
                ('from_user_id', models.BigIntegerField()),
                ('to_user_id', models.BigIntegerField()),
                ('amount', models.DecimalField(decimal_places=3, max_digits=24)),
                ('currency', models.CharField(max_length=3)),
                ('description', models.CharField(blank=True, default='', max_length=500)),
                ('reference', models.CharField(blank=True, max_length=255, null=True)),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('completed', 'Completed'), ('failed', 'Failed')], default='pending', max_length=16)),
                ('error_code', models.CharField(blank=True, max_length=64, null=True)),
                ('error_message', models.CharField(blank=True, max_length=500, null=True)),
                ('batch', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='items', to='transactions.transferbatch')),
                ('transaction', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='transactions.transaction')),
            ],
            options={
                'db_table': 'transfer_batch_items',
                'ordering': ('batch_id', 'index'),
            },
        ),
        migrations.AddIndex(
            model_name='transferbatch',
            index=models.Index(fields=['owner', '-created_at', '-id'], name='batch_owner_idx'),
        ),
        migrations.AddIndex(
            model_name='transferbatch',
            index=models.Index(condition=models.Q(('status__in', ['pending', 'processing'])), fields=['updated_at'], name='batch_unfinished_idx'),
        ),
        migrations.AddConstraint(
            model_name='transferbatch',
            constraint=models.CheckConstraint(condition=models.Q(('processed', django.db.models.expressions.CombinedExpression(models.F('succeeded'), '+', models.F('failed'))), ('processed__lte', models.F('total'))), name='batch_counts_consistent'),
        ),
        migrations.AddConstraint(
            model_name='transferbatchitem',
            constraint=models.UniqueConstraint(fields=('batch', 'index'), name='batch_item_unique_index'),
        ),
        migrations.AddConstraint(
            model_name='transferbatchitem',
            constraint=models.CheckConstraint(condition=models.Q(('amount__gt', 0)), name='batch_item_amount_positive'),
        ),
    ]
