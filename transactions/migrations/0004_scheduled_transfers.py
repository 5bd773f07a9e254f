"""Scheduled transfers and their runs."""

import django.db.models.deletion
import uuid
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('transactions', '0003_transfer_batches'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='ScheduledTransfer',
            fields=[
                ('id', models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ('amount', models.DecimalField(decimal_places=3, max_digits=24)),
                ('description', models.CharField(blank=True, default='', max_length=500)),
                ('interval', models.CharField(blank=True, choices=[('daily', 'Daily'), ('weekly', 'Weekly'), ('monthly', 'Monthly')], max_length=16, null=True)),
                ('run_at', models.DateTimeField()),
                ('end_at', models.DateTimeField(blank=True, null=True)),
                ('next_run_at', models.DateTimeField(blank=True, null=True)),
                ('status', models.CharField(choices=[('active', 'Active'), ('paused', 'Paused'), ('completed', 'Completed'), ('cancelled', 'Cancelled')], default='active', max_length=16)),
                ('run_count', models.PositiveIntegerField(default=0)),
                ('consecutive_failures', models.PositiveIntegerField(default=0)),
                ('created_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField()),
                ('created_by', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('currency', models.ForeignKey(db_column='currency', on_delete=django.db.models.deletion.PROTECT, related_name='+', to='transactions.currency')),
                ('from_user', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('to_user', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'db_table': 'scheduled_transfers',
                'ordering': ('-created_at', '-id'),
            },
        ),
        migrations.CreateModel(
            name='ScheduledRun',
            fields=[
                ('id', models.BigAutoField(primary_key=True, serialize=False)),
                ('run_number', models.PositiveIntegerField()),
                ('run_at', models.DateTimeField()),
                ('status', models.CharField(choices=[('pending', 'Pending'), ('completed', 'Completed'), ('failed', 'Failed')], default='pending', max_length=16)),
                ('error_code', models.CharField(blank=True, max_length=64, null=True)),
                ('error_message', models.CharField(blank=True, max_length=500, null=True)),
                ('created_at', models.DateTimeField()),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('transaction', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='transactions.transaction')),
                ('schedule', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='runs', to='transactions.scheduledtransfer')),
            ],
            options={
                'db_table': 'scheduled_runs',
                'ordering': ('schedule_id', 'run_number'),
            },
        ),
        migrations.AddIndex(
            model_name='scheduledtransfer',
            index=models.Index(condition=models.Q(('status', 'active')), fields=['next_run_at'], name='schedule_due_idx'),
        ),
        migrations.AddIndex(
            model_name='scheduledtransfer',
            index=models.Index(fields=['-created_at', '-id'], name='schedule_created_idx'),
        ),
        migrations.AddConstraint(
            model_name='scheduledtransfer',
            constraint=models.CheckConstraint(condition=models.Q(('amount__gt', 0)), name='schedule_amount_positive'),
        ),
        migrations.AddConstraint(
            model_name='scheduledtransfer',
            constraint=models.CheckConstraint(condition=models.Q(('end_at__isnull', True), models.Q(('end_at__gte', models.F('run_at')), ('interval__isnull', False)), _connector='OR'), name='schedule_end_after_start'),
        ),
        migrations.AddConstraint(
            model_name='scheduledtransfer',
            constraint=models.CheckConstraint(condition=models.Q(models.Q(('status', 'active'), _negated=True), ('next_run_at__isnull', False), _connector='OR'), name='schedule_active_has_next_run'),
        ),
        migrations.AddIndex(
            model_name='scheduledrun',
            index=models.Index(condition=models.Q(('status', 'pending')), fields=['created_at'], name='scheduled_run_pending_idx'),
        ),
        migrations.AddConstraint(
            model_name='scheduledrun',
            constraint=models.UniqueConstraint(fields=('schedule', 'run_number'), name='scheduled_run_unique_number'),
        ),
    ]
