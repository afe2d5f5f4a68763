"""Learning-rate schedules, stepped once per batch; planned_rates() draws one before a run starts."""

import torch

PLAN_STEPS = 20  # steps per epoch simulated for a planned curve: the shapes do not depend on it


def make_scheduler(cfg, optimizer, steps_per_epoch):
    """none -> None; step: the rate divided by 10 after the first and after the second third of the steps;
    cosine: down to 0 over the run; onecycle: up from lr/25 to lr over the first 30% of steps, then down to
    lr/250,000."""
    total = max(1, cfg.epochs * steps_per_epoch)
    if cfg.schedule == "step":
        milestones = sorted({max(1, round(total / 3)), max(1, round(2 * total / 3))})
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=milestones, gamma=0.1)
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=cfg.lr, total_steps=total)
    return None


def planned_rates(cfg):
    """-> [[epoch (float, 0 = the start), learning rate]], the schedule the run will follow."""
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=cfg.lr, momentum=0.9)
    scheduler = make_scheduler(cfg, optimizer, PLAN_STEPS)
    points = []
    for step in range(cfg.epochs * PLAN_STEPS + 1):
        points.append([round(step / PLAN_STEPS, 4), optimizer.param_groups[0]["lr"]])
        if scheduler is not None and step < cfg.epochs * PLAN_STEPS:
            optimizer.step()
            scheduler.step()
    return points
